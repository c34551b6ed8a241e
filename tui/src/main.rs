//! `signoff`: the terminal client. The interactive queue arrives with the terminal issue;
//! for now it knows its name and its server.

use clap::Parser;

#[derive(Parser)]
#[command(
    name = "signoff",
    version,
    about = "Approve or deny Signoff requests from the terminal"
)]
struct Cli {
    /// The Signoff server, e.g. https://signoff.example.com
    #[arg(long, env = "SIGNOFF_SERVER")]
    server: Option<String>,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.server {
        Some(server) => {
            println!("signoff: server {server}; the interactive client is not built yet")
        }
        None => println!("signoff: pass --server URL or set SIGNOFF_SERVER"),
    }
    Ok(())
}
