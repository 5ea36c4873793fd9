//! `hftnet xdp stats IFACE`: the counters of the XDP steering program attached
//! to an interface (by any hftnet process), per verdict and per flow.

use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::{Args, Subcommand};
use hftnet_io::xdp::steer;

#[derive(Debug, Args)]
pub struct XdpArgs {
    #[command(subcommand)]
    action: XdpAction,
}

#[derive(Debug, Subcommand)]
enum XdpAction {
    /// Counters of the steering program on IFACE, summed over CPUs: each
    /// verdict (redirected, passed and why) and each steered flow.
    Stats {
        /// The interface.
        #[arg(value_parser = crate::util::parse_iface)]
        iface: String,
        /// Print one JSON object instead of `# key: value` lines.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(a: XdpArgs) -> Result<ExitCode> {
    match a.action {
        XdpAction::Stats { iface, json } => stats(&iface, json),
    }
}

fn stats(iface: &str, json: bool) -> Result<ExitCode> {
    let s = match steer::stats_of(iface) {
        Ok(s) => s,
        Err(e) => bail!("{e}"),
    };
    if json {
        let verdicts: serde_json::Map<String, serde_json::Value> = s
            .verdicts
            .iter()
            .map(|(k, v)| ((*k).to_string(), serde_json::json!(v)))
            .collect();
        let flows: Vec<serde_json::Value> = s
            .flows
            .iter()
            .map(|f| {
                serde_json::json!({
                    "flow_id": f.flow_id, "dst": f.dst.to_string(),
                    "packets": f.packets, "bytes": f.bytes,
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::json!({ "iface": iface, "verdicts": verdicts, "flows": flows })
        );
    } else {
        println!("# iface: {iface}");
        for (k, v) in &s.verdicts {
            println!("# {k}: {v}");
        }
        for f in &s.flows {
            println!(
                "# flow {} {}: {} packets, {} bytes",
                f.flow_id, f.dst, f.packets, f.bytes
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
