//! The `cloudmount` command: parse the command line and dispatch to [`cli`].

mod cli;

use clap::Parser;
use cli::{Cli, Command};

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Mount(a) => cli::mount::run(a),
        Command::Unmount(a) => cli::unmount::run(a),
    };
    if let Err(msg) = result {
        eprintln!("cloudmount: {msg}");
        std::process::exit(1);
    }
}
