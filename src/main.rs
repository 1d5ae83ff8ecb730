//! The `cloudmount` command: parse the command line and dispatch to [`cli`].

mod cli;

use clap::Parser;
use cli::{Cli, Command};

fn main() {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if cli::helper::is_helper(&argv) {
        if let Err(msg) = cli::helper::run(&argv) {
            eprintln!("cloudmount: {msg}");
            // mount(8): 32 is "mount failure".
            std::process::exit(32);
        }
        return;
    }
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Mount(a) => cli::mount::run(a),
        Command::Auth(a) => cli::auth::run(a),
        Command::Unmount(a) => cli::unmount::run(a),
        Command::Fstab(a) => cli::fstab::run(a),
        Command::SystemdUnit(a) => cli::systemd_unit::run(a),
        Command::SystemdGenerator(a) => cli::generator::run(a),
        Command::Status(a) => cli::status::run(a),
        Command::Stats(a) => cli::stats::run(a),
        Command::LogLevel(a) => cli::log_level::run(a),
        Command::Warm(a) => cli::warm::run(a),
        Command::Csi(a) => cli::csi::run(a),
        Command::CsiMounter(a) => cli::csi::run_mounter(a),
        Command::Completions { shell } => cli::completions(shell),
        Command::Man => cli::man(),
    };
    if let Err(msg) = result {
        eprintln!("cloudmount: {msg}");
        std::process::exit(1);
    }
}
