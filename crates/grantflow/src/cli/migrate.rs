//! `grantflow migrate-instances`: move running instances to a new workflow version.

use std::collections::BTreeMap;
use std::sync::Arc;

use grantflow_service::{ServiceError, SystemClock};

use crate::config::Config;

pub async fn migrate_instances(
    config: &Config,
    workflow: &str,
    from: u32,
    to: u32,
    mappings: &[String],
    reason: &str,
    apply: bool,
) -> anyhow::Result<i32> {
    let mut mapping = BTreeMap::new();
    for m in mappings {
        let (a, b) = m
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("--map `{m}`: write old_state=new_state"))?;
        mapping.insert(a.trim().to_string(), b.trim().to_string());
    }
    let services = crate::cli::serve::services(config, Arc::new(SystemClock)).await?;
    let outcomes = services
        .migrate_instances("operator", workflow, from, to, &mapping, reason, apply)
        .await
        .map_err(|e| match e {
            ServiceError::Invalid(errors) => anyhow::anyhow!(
                "the mapping is not valid:\n{}",
                errors
                    .iter()
                    .map(|e| format!("  {}", e.message.en))
                    .collect::<Vec<_>>()
                    .join("\n")
            ),
            other => anyhow::anyhow!("{other}"),
        })?;
    let refused = outcomes.iter().filter(|o| o.refused.is_some()).count();
    let verb = if apply { "moved" } else { "would move" };
    for o in &outcomes {
        match (&o.to_state, &o.refused) {
            (_, Some(why)) => println!(
                "refused     {}  {} ({}): {why}",
                o.instance_id, o.title, o.from_state
            ),
            (Some(to), None) => println!(
                "{verb:<11} {}  {}: {} → {to}",
                o.instance_id, o.title, o.from_state
            ),
            (None, None) => {}
        }
    }
    println!(
        "{} instance(s) {verb}, {refused} refused{}",
        outcomes.len() - refused,
        if apply {
            ""
        } else {
            " (dry run: add --apply to write)"
        }
    );
    Ok(if refused > 0 { 1 } else { 0 })
}
