//! The committed `schema.graphql` is the SDL of the running schema.

#[test]
fn committed_schema_graphql_is_current() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../schema.graphql");
    let sdl = grantflow_api::sdl();
    if std::env::var_os("UPDATE_SCHEMA").is_some() {
        std::fs::write(path, &sdl).unwrap();
    }
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == sdl,
        "schema.graphql is stale: run `UPDATE_SCHEMA=1 cargo test -p grantflow-api --test it schema` (or `grantflow schema > schema.graphql`) and commit it"
    );
}
