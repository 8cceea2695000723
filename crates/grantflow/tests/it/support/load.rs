//! A steady stream of transitions against a running `grantflow serve`: one client task
//! creating and submitting applications back to back, for as long as the test lets it,
//! recording every acknowledged transition and every refusal. Tests wait on what the
//! stream has seen (`wait_for`), never on the clock.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tokio::sync::{Notify, watch};

use super::HANG_GUARD;

const CREATE: &str = "mutation($c: ID!) { createInstance(input: { workflowId: \"funded-project\", \
    title: \"持续负载\", callId: $c, catalogueItem: \"2022-2-1-5\" }) { id version } }";
const SUBMIT: &str = "mutation($id: ID!) { transition(instanceId: $id, event: \"submit\", expectedVersion: 0, input: { \
    project_name: \"持续负载\", budget: \"300000.00\", \
    indicators: [{ category: \"output_quantity\", name: \"调解案件数\", unit: \"件\", target: 200, direction: \"higher_is_better\", weight: 1 }, { category: \"effect_social\", name: \"当事人满意度\", unit: \"%\", target: 90, direction: \"higher_is_better\", weight: 1 }], \
    application_files: [{ name: \"申报书.pdf\", sha256: \"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\", size: 20480 }] \
    }) { instance { id version } } }";

/// What the stream has seen so far.
#[derive(Debug, Default, Clone)]
pub struct Seen {
    /// Instance id → the highest version acknowledged to the client.
    pub acknowledged: BTreeMap<String, i64>,
    /// Acknowledged transitions (creations included), in order.
    pub acks: usize,
    /// Requests answered 503 / `UNAVAILABLE` (the database was away).
    pub unavailable: usize,
    /// Anything else: a wrong status or code, or no answer at all.
    pub unexpected: Vec<String>,
}

pub struct Load {
    seen: Arc<Mutex<Seen>>,
    changed: Arc<Notify>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

/// One request; `Ok` with the answer's data, `Err(true)` for UNAVAILABLE, `Err(false)`
/// recorded as unexpected.
async fn request(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    query: &str,
    variables: Value,
    seen: &Mutex<Seen>,
) -> Option<Value> {
    let response = client
        .post(format!("{base}/graphql"))
        .bearer_auth(token)
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await;
    let response = match response {
        Ok(r) => r,
        Err(e) => {
            seen.lock()
                .unwrap()
                .unexpected
                .push(format!("no answer: {e}"));
            return None;
        }
    };
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if body.get("errors").is_none() && status == 200 {
        return Some(body["data"].clone());
    }
    let code = body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or("");
    let mut s = seen.lock().unwrap();
    if status == 503 && code == "UNAVAILABLE" {
        s.unavailable += 1;
    } else {
        s.unexpected.push(format!("{status} {body}"));
    }
    None
}

impl Load {
    /// Start creating and submitting applications of `call` as `token` against `base`.
    pub fn start(base: &str, token: &str, call: &str) -> Self {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let changed = Arc::new(Notify::new());
        let (stop, mut stopped) = watch::channel(false);
        let (base, token, call) = (base.to_string(), token.to_string(), call.to_string());
        let task = {
            let (seen, changed) = (seen.clone(), changed.clone());
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                while !*stopped.borrow_and_update() {
                    let created =
                        request(&client, &base, &token, CREATE, json!({ "c": call }), &seen).await;
                    if let Some(id) = created
                        .as_ref()
                        .and_then(|d| d["createInstance"]["id"].as_str())
                    {
                        {
                            let mut s = seen.lock().unwrap();
                            s.acknowledged.insert(id.to_string(), 0);
                            s.acks += 1;
                        }
                        changed.notify_waiters();
                        let submitted =
                            request(&client, &base, &token, SUBMIT, json!({ "id": id }), &seen)
                                .await;
                        if let Some(v) = submitted
                            .as_ref()
                            .and_then(|d| d["transition"]["instance"]["version"].as_i64())
                        {
                            let mut s = seen.lock().unwrap();
                            s.acknowledged.insert(id.to_string(), v);
                            s.acks += 1;
                        }
                    }
                    changed.notify_waiters();
                }
            })
        };
        Self {
            seen,
            changed,
            stop,
            task,
        }
    }

    /// What the stream has seen so far.
    pub fn seen(&self) -> Seen {
        self.seen.lock().unwrap().clone()
    }

    /// Until `done` holds for what the stream has seen (checked after each request).
    pub async fn wait_for(&self, what: &str, done: impl Fn(&Seen) -> bool) {
        loop {
            let notified = self.changed.notified();
            if done(&self.seen.lock().unwrap()) {
                return;
            }
            if tokio::time::timeout(HANG_GUARD, notified).await.is_err() {
                panic!("the stream never saw {what}: {:?}", self.seen());
            }
        }
    }

    /// Stop after the request in flight; everything seen.
    pub async fn stop(self) -> Seen {
        let _ = self.stop.send(true);
        self.task.await.expect("the load task");
        Arc::try_unwrap(self.seen)
            .map(|m| m.into_inner().unwrap())
            .unwrap_or_else(|arc| arc.lock().unwrap().clone())
    }
}
