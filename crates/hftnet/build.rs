//! Build script of `hftnet`: records the git commit the binary was built
//! from as `HFTNET_GIT_COMMIT` (`git rev-parse --short=12 HEAD`, with
//! `-dirty` when tracked files differ from it), which reports print beside
//! the version. Only the checkout this crate is tracked in counts (not a
//! repository that merely contains the build directory, such as a home
//! directory kept in git); without git, or outside a checkout, it sets
//! nothing and the program says `unknown`. `HFTNET_GIT_COMMIT` set by
//! whoever builds wins.

use std::path::Path;
use std::process::Command;

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    Some(String::from_utf8(out.stdout).ok()?.trim().to_string())
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=HFTNET_GIT_COMMIT");
    if std::env::var_os("HFTNET_GIT_COMMIT").is_some() {
        // Given by whoever builds (e.g. a packager without the .git).
        return;
    }
    let Some(manifest) = std::env::var_os("CARGO_MANIFEST_DIR") else {
        return;
    };
    let here = Path::new(&manifest);
    // This crate's own checkout: build.rs is a tracked file of it.
    if git(here, &["ls-files", "--error-unmatch", "build.rs"]).is_none() {
        return;
    }
    // Rerun on a commit, a checkout or a change of the sources: HEAD, the
    // branch it names (loose or packed, in the common directory of a
    // worktree), the index, and the workspace's crates (for `-dirty`).
    let gitdir = git(here, &["rev-parse", "--absolute-git-dir"]);
    let common = git(
        here,
        &["rev-parse", "--path-format=absolute", "--git-common-dir"],
    );
    let branch = git(here, &["symbolic-ref", "-q", "HEAD"]);
    let mut watch: Vec<std::path::PathBuf> = Vec::new();
    if let Some(d) = &gitdir {
        watch.push(Path::new(d).join("HEAD"));
        watch.push(Path::new(d).join("index"));
    }
    if let Some(c) = common.as_ref().or(gitdir.as_ref()) {
        watch.push(Path::new(c).join("packed-refs"));
        if let Some(b) = &branch {
            watch.push(Path::new(c).join(b));
        }
    }
    watch.push(here.join("..")); // the workspace's crates
    for p in watch.iter().filter(|p| p.exists()) {
        println!("cargo:rerun-if-changed={}", p.display());
    }
    let Some(commit) = git(here, &["rev-parse", "--short=12", "HEAD"]).filter(|c| !c.is_empty())
    else {
        return;
    };
    let dirty = git(here, &["status", "--porcelain", "--untracked-files=no"])
        .is_some_and(|s| !s.is_empty());
    let suffix = if dirty { "-dirty" } else { "" };
    println!("cargo:rustc-env=HFTNET_GIT_COMMIT={commit}{suffix}");
}
