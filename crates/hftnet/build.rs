//! Build script of `hftnet`: records the git commit the binary was built
//! from as `HFTNET_GIT_COMMIT` (`git rev-parse --short=12 HEAD`), which
//! reports print beside the version. Without git, or outside a checkout, it
//! sets nothing and the program says `unknown`.

use std::path::Path;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!s.is_empty()).then_some(s)
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=HFTNET_GIT_COMMIT");
    if std::env::var_os("HFTNET_GIT_COMMIT").is_some() {
        // Given by whoever builds (e.g. a packager without the .git).
        return;
    }
    // Rerun on a commit or checkout: the worktree's HEAD and its reflog.
    if let Some(dir) = git(&["rev-parse", "--absolute-git-dir"]) {
        for f in ["HEAD", "logs/HEAD"] {
            let p = Path::new(&dir).join(f);
            if p.exists() {
                println!("cargo:rerun-if-changed={}", p.display());
            }
        }
    }
    if let Some(commit) = git(&["rev-parse", "--short=12", "HEAD"]) {
        println!("cargo:rustc-env=HFTNET_GIT_COMMIT={commit}");
    }
}
