//! Reading workflow files and the calendar from disk.

use std::path::{Path, PathBuf};

use anyhow::Context;
use grantflow_domain::calendar::WorkCalendar;
use grantflow_domain::diagnostic::{Diagnostic, has_errors};
use grantflow_domain::{CompiledWorkflow, Registry, load_str};

/// The workflow files under `path`: the file itself, or the `*.toml` files directly in the
/// folder (sub-folders hold the calendar and call data, not workflows), sorted.
pub fn workflow_files(path: &Path) -> anyhow::Result<Vec<PathBuf>> {
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(path).with_context(|| format!("reading {}", path.display()))? {
        let p = entry?.path();
        if p.is_file() && p.extension().is_some_and(|e| e == "toml") {
            files.push(p);
        }
    }
    files.sort();
    Ok(files)
}

pub struct Loaded {
    pub registry: Registry,
    pub diagnostics: Vec<Diagnostic>,
    pub files: Vec<PathBuf>,
}

/// Load and validate every workflow file under the given paths.
pub fn load_paths(paths: &[PathBuf]) -> anyhow::Result<Loaded> {
    let mut registry = Registry::default();
    let mut diagnostics = Vec::new();
    let mut all_files = Vec::new();
    for path in paths {
        for file in workflow_files(path)? {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let outcome = load_str(&file.display().to_string(), &text);
            diagnostics.extend(outcome.diagnostics);
            if let Some(wf) = outcome.workflow
                && let Err(e) = registry.insert(wf)
            {
                anyhow::bail!("{}: {e}", file.display());
            }
            all_files.push(file);
        }
    }
    Ok(Loaded {
        registry,
        diagnostics,
        files: all_files,
    })
}

/// Load a folder for serving: refuse when any workflow has errors.
pub fn load_for_serving(dir: &Path) -> anyhow::Result<Registry> {
    let loaded = load_paths(&[dir.to_path_buf()])?;
    if loaded.files.is_empty() {
        anyhow::bail!("no workflow files (*.toml) in {}", dir.display());
    }
    for d in &loaded.diagnostics {
        eprintln!("{d}");
    }
    if has_errors(&loaded.diagnostics) {
        anyhow::bail!(
            "refusing to start: the workflows in {} have errors (run `grantflow workflow check {}`)",
            dir.display(),
            dir.display()
        );
    }
    Ok(loaded.registry)
}

/// Load one file, failing with its diagnostics.
pub fn load_one(file: &Path) -> anyhow::Result<CompiledWorkflow> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let outcome = load_str(&file.display().to_string(), &text);
    match outcome.workflow {
        Some(wf) => Ok(wf),
        None => {
            let lines: Vec<String> = outcome
                .diagnostics
                .iter()
                .map(ToString::to_string)
                .collect();
            anyhow::bail!("{}", lines.join("\n"))
        }
    }
}

/// The calendar file if given, else `<workflows>/calendar/cn-workdays.toml` if present,
/// else the calendar compiled into the binary.
pub fn load_calendar(file: Option<&Path>, workflows_dir: &Path) -> anyhow::Result<WorkCalendar> {
    let default = workflows_dir.join("calendar").join("cn-workdays.toml");
    let path = match file {
        Some(p) => Some(p.to_path_buf()),
        None if default.exists() => Some(default),
        None => None,
    };
    match path {
        Some(p) => {
            let text =
                std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?;
            WorkCalendar::from_toml_str(&text).with_context(|| format!("calendar {}", p.display()))
        }
        None => Ok(WorkCalendar::builtin()),
    }
}
