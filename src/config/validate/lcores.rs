//! Whether EAL will have an lcore for every worker and one more, the main lcore, which runs
//! the control thread, where `dpdk.eal_args` say which lcores: without this check `run`
//! would refuse the config only once DPDK had started.

use std::collections::BTreeSet;

use super::{limit, Problems};
use crate::config::model::Config;

/// Lcore ids from here up are left to EAL to accept or refuse (its `RTE_MAX_LCORE` is 128
/// by default), which also bounds the sets built here.
const LCORE_IDS: u32 = 1024;

pub(super) fn enough_for_workers(cfg: &Config, out: &mut Problems) {
    let workers = cfg.dataplane.workers;
    // No worker at all is reported by `dataplane::sizes`.
    if workers == 0 {
        return;
    }
    let Some((option, lcores)) = eal_lcores(&cfg.dpdk.eal_args) else {
        return;
    };
    let need = u64::from(workers) + 1;
    if lcores as u64 >= need {
        return;
    }
    let fewer = match lcores.saturating_sub(1) {
        0 => String::new(),
        n => format!(", or set workers to at most {n}"),
    };
    out.error(
        "dataplane.workers",
        limit::LCORES,
        format!(
            "{workers} worker(s) need {need} EAL lcores (one each, and the main lcore for the \
             control thread), but dpdk.eal_args give {lcores} (`{option}`); give more, e.g. \
             `-l 0-{workers}`{fewer}"
        ),
    );
}

/// The lcores EAL will run, from the one lcore option of `args` (`-l`, `-c` or `--lcores`),
/// with that option as written; `None` where `args` do not tell: no such option (EAL then
/// takes every CPU it may run on), more than one (EAL refuses that itself), service cores
/// (`-s`, `-S`: they are taken out of the workers' lcores), or a value not read here.
fn eal_lcores(args: &[String]) -> Option<(String, usize)> {
    let mut found: Vec<(&str, &str)> = Vec::new();
    let mut args = args.iter().map(String::as_str);
    while let Some(arg) = args.next() {
        // EAL reads no option after `--`.
        if arg == "--" {
            break;
        }
        let (option, attached) = match arg.split_once('=') {
            Some((option, value)) if option.starts_with("--") => (option, Some(value)),
            _ if arg.starts_with("--") => (arg, None),
            // `-l0-1`: getopt's attached argument.
            _ if arg.len() > 2 && arg.starts_with('-') && arg.is_char_boundary(2) => {
                (&arg[..2], Some(&arg[2..]))
            }
            _ => (arg, None),
        };
        match option {
            "-l" | "-c" | "--lcores" => found.push((option, attached.or_else(|| args.next())?)),
            "-s" | "-S" => return None,
            _ => {}
        }
    }
    let [(option, value)] = found[..] else {
        return None;
    };
    let count = match option {
        "-c" => mask(value)?,
        "-l" => ids(value)?.len(),
        _ => lcores_map(value)?,
    };
    let shown = if option == "--lcores" {
        format!("--lcores={value}")
    } else {
        format!("{option} {value}")
    };
    Some((shown, count))
}

/// `-c`: a hexadecimal mask, `0x` optional; one lcore a bit.
fn mask(value: &str) -> Option<usize> {
    let hex = value.trim();
    let hex = hex
        .strip_prefix("0x")
        .or_else(|| hex.strip_prefix("0X"))
        .unwrap_or(hex);
    if hex.is_empty() {
        return None;
    }
    hex.chars()
        .map(|c| c.to_digit(16).map(|d| d.count_ones() as usize))
        .sum()
}

/// `-l`, and each side of a `--lcores` item: lcore ids and ranges, `0-3,5` (a range may run
/// downwards, as EAL reads it).
fn ids(list: &str) -> Option<BTreeSet<u32>> {
    let mut out = BTreeSet::new();
    for item in list.split(',') {
        let number = |text: &str| text.trim().parse::<u32>().ok();
        let (a, b) = match item.split_once('-') {
            Some((a, b)) => (number(a)?, number(b)?),
            None => (number(item)?, number(item)?),
        };
        let (first, last) = (a.min(b), a.max(b));
        if last >= LCORE_IDS {
            return None;
        }
        out.extend(first..=last);
    }
    Some(out)
}

/// `--lcores`: items `LCORES[@CPUS]`, commas between, where each side is an id, a range or
/// a group in parentheses (`(0-3,5)@(6,7)`); the lcores are what comes before `@`.
fn lcores_map(value: &str) -> Option<usize> {
    let mut lcores = BTreeSet::new();
    for item in top_level_items(value)? {
        let left = item.split('@').next()?.trim();
        let left = match left.strip_prefix('(') {
            Some(group) => group.strip_suffix(')')?,
            None => left,
        };
        lcores.extend(ids(left)?);
    }
    Some(lcores.len())
}

/// `text` split at the commas outside parentheses; `None` when they do not pair up.
fn top_level_items(text: &str) -> Option<Vec<&str>> {
    let mut items = Vec::new();
    let (mut depth, mut start) = (0u32, 0);
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.checked_sub(1)?,
            ',' if depth == 0 => {
                items.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return None;
    }
    items.push(&text[start..]);
    Some(items)
}

#[cfg(test)]
mod tests {
    use super::eal_lcores;

    fn lcores(args: &[&str]) -> Option<usize> {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        eal_lcores(&args).map(|(_, n)| n)
    }

    #[test]
    fn lcores_are_counted_from_l_c_and_lcores() {
        assert_eq!(lcores(&["-l", "0-1", "--in-memory"]), Some(2));
        assert_eq!(lcores(&["-l0-3,5"]), Some(5));
        assert_eq!(lcores(&["-l", "3-1,2"]), Some(3));
        assert_eq!(lcores(&["-c", "0x3"]), Some(2));
        assert_eq!(lcores(&["-cf0"]), Some(4));
        assert_eq!(lcores(&["--lcores=0@(0-1),1@0,2@1"]), Some(3));
        assert_eq!(lcores(&["--lcores", "(0-3)@4,(5,6)@(7,8),9"]), Some(7));
        assert_eq!(
            lcores(&["--lcores=1,2@(5-7),(3-5)@(0,2),(0,6),7-8"]),
            Some(9)
        );
    }

    #[test]
    fn lcores_are_unknown_where_the_arguments_do_not_tell() {
        // EAL takes every CPU it may run on.
        assert_eq!(lcores(&["--in-memory"]), None);
        // EAL refuses two lcore options.
        assert_eq!(lcores(&["-l", "0-1", "-c", "0x3"]), None);
        // Service cores come out of the lcores.
        assert_eq!(lcores(&["-l", "0-3", "-s", "0x8"]), None);
        // Not read here: left to EAL.
        assert_eq!(lcores(&["-l", "0-x"]), None);
        assert_eq!(lcores(&["-c", "0xg"]), None);
        assert_eq!(lcores(&["--lcores=(0-1@2"]), None);
        assert_eq!(lcores(&["-l", "0-100000"]), None);
        assert_eq!(lcores(&["-l"]), None);
        // After `--`, nothing is an EAL option.
        assert_eq!(lcores(&["--", "-l", "0-1"]), None);
    }
}
