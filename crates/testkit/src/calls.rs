//! Calls for tests: applications belong to a stored call and one of its items, so a test
//! that creates applications opens one first, through the service as the manager would.

use grantflow_programme::catalogue::Catalogue;
use grantflow_service::Services;
use grantflow_service::programme::OpenCall;
use grantflow_store::User;
use uuid::Uuid;

use crate::app::TEST_CALL;

/// The shipped 2022 catalogue (77 items, every part and applicant kind).
pub const CATALOGUE_2022: &str = include_str!("../../../workflows/calls/2022.toml");

/// A call of `catalogue` (TOML) closing on 2024-06-28, everything else as the catalogue
/// or the defaults say. Change fields with `OpenCall { title: …, ..call_of(…) }`.
pub fn call_of(catalogue: &str) -> OpenCall {
    OpenCall {
        year: None,
        title: None,
        issuer: None,
        closing_date: Some("2024-06-28".parse().unwrap()),
        correction_window_days: None,
        catalogue: Catalogue::from_toml_str(catalogue).unwrap(),
    }
}

/// Open `call` as `manager`; its id.
pub async fn open_call(services: &Services, manager: &User, call: OpenCall) -> Uuid {
    services.open_call(manager, call).await.unwrap().id
}

/// Open the one-item [`TEST_CALL`] as `manager`; its id. [`crate::TestApp::call_id`] opens
/// it once per application.
pub async fn open_test_call(services: &Services, manager: &User) -> Uuid {
    open_call(services, manager, call_of(TEST_CALL)).await
}
