//! `signoff verify-receipt`: what an executor runs, offline, before running an approved
//! action: the receipt must be signed by the log's key, approve exactly this action
//! (its digest, recomputed here) and still be within its execution window.

use std::io::Read as _;
use std::path::PathBuf;

use signoff_app::evidence::note::PublicKey;
use signoff_app::evidence::receipt::{digest_of_action, verify};

/// Exit codes, for scripts.
pub const VALID: u8 = 0;
pub const INVALID: u8 = 1;
pub const UNREADABLE: u8 = 2;

pub const AFTER_HELP: &str = "Exit codes: 0 the receipt approves exactly this action and is in its window; \
1 it does not (wrong key, other action, expired, forged); 2 the input could not be read.";

#[derive(Debug, clap::Args)]
pub struct VerifyReceiptArgs {
    /// The receipt (a compact JWS), or a file holding it, or `-` for standard input.
    pub receipt: String,
    /// The exact action as JSON: `action`, `resource`, `labels`, `payload`, `diff` (the
    /// request as the API returns it will do).
    #[arg(long, value_name = "FILE")]
    pub action: PathBuf,
    /// The log's public key (`name+keyid+base64`, from the server's
    /// /.well-known/signoff/keys); repeat for keys from before a rotation.
    #[arg(long, required = true)]
    pub key: Vec<String>,
}

pub fn run(args: &VerifyReceiptArgs) -> u8 {
    match check(args) {
        Ok(Ok(summary)) => {
            println!("{summary}");
            VALID
        }
        Ok(Err(why)) => {
            println!("receipt NOT valid: {why}");
            INVALID
        }
        Err(why) => {
            eprintln!("signoff verify-receipt: {why}");
            UNREADABLE
        }
    }
}

fn check(args: &VerifyReceiptArgs) -> Result<Result<String, String>, String> {
    let token = if args.receipt == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|err| err.to_string())?;
        text
    } else if std::path::Path::new(&args.receipt).is_file() {
        std::fs::read_to_string(&args.receipt).map_err(|err| format!("{}: {err}", args.receipt))?
    } else {
        args.receipt.clone()
    };
    let action = std::fs::read_to_string(&args.action).map_err(|err| format!("{}: {err}", args.action.display()))?;
    let action: serde_json::Value =
        serde_json::from_str(&action).map_err(|err| format!("{}: not JSON: {err}", args.action.display()))?;
    let keys = args
        .key
        .iter()
        .map(|key| PublicKey::parse(key).map_err(|err| format!("--key {key}: {err}")))
        .collect::<Result<Vec<_>, _>>()?;
    let digest = digest_of_action(&action).map_err(|err| err.to_string())?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    Ok(verify(token.trim(), &keys, &digest, now)
        .map(|claims| {
            let approvers: Vec<String> = claims
                .approvers
                .iter()
                .map(|who| who.email.clone().unwrap_or_else(|| who.subject.clone()))
                .collect();
            format!(
                "receipt valid: request {} may run `{}` on {} (digest {}), approved by {} under policy `{}` version {}, audit event {}; its window closes at {} (Unix seconds)",
                claims.sub,
                claims.action,
                claims.resource,
                claims.digest,
                if approvers.is_empty() { claims.approved_by.clone() } else { approvers.join(", ") },
                claims.policy.name,
                claims.policy.version,
                claims.seq,
                claims.exp
            )
        })
        .map_err(|err| err.to_string()))
}
