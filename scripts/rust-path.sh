# Sourced by the scripts that run cargo. rustup installs Rust into ~/.cargo/bin and puts that
# on PATH only through the shell's profile, which `sudo` leaves out (its secure_path resets
# PATH): the running user's (root's, under sudo) ~/.cargo/bin goes first in PATH where it
# exists, as rustup's own env script puts it.
cargo_home=${CARGO_HOME:-}
if [ -z "$cargo_home" ]; then
  # A uid without a passwd entry (a container) has no home to look in but $HOME.
  cargo_home=$(getent passwd "$(id -u)" | cut -d: -f6 || true)
  cargo_home=${cargo_home:-${HOME:-}}
  cargo_home=${cargo_home:+$cargo_home/.cargo}
fi
cargo_bin=${cargo_home:+$cargo_home/bin}
if [ -n "$cargo_bin" ] && [ -d "$cargo_bin" ]; then
  case ":$PATH:" in
    *":$cargo_bin:"*) ;;
    *) PATH=$cargo_bin:$PATH; export PATH ;;
  esac
fi
unset cargo_bin cargo_home
