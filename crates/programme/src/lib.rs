//! grantflow-programme: the pure logic of a yearly call for IP work projects.
//!
//! Everything here is synchronous and free of I/O apart from reading and writing
//! spreadsheet bytes handed in by the caller: no database, no network, no clock.
//!
//! * [`catalogue`]: a call's eight categories, policy areas and catalogue items, and the
//!   four parts of a catalogue (保留省级, 后补助, 支持专利代办处及省知识产权保护中心,
//!   下放地市审批). The 2022 catalogue is committed as `workflows/calls/2022.toml`.
//! * [`demand`]: a row of the 需求征集表 and its validation.
//! * [`similarity`]: likely duplicate demands (不得重复设立绩效目标相近或资金用途相似的项目).
//! * [`import`]: reading a filled-in 需求征集表 from XLSX, after [`workbook_limits`] has
//!   checked the file against its caps (zip parts, decompressed bytes, rows, cells).
//! * [`cancel`]: cooperative cancellation of CPU-heavy work whose request went away.
//! * [`export`]: XLSX and CSV output of demands, generic tables and evaluation results.
//! * [`budget`]: budget lines and spending (先有预算再有执行、没有预算不得支出).
//! * [`indicator`]: performance indicators, frozen at approval, changed only through an
//!   approved change request.
//! * [`evaluation`]: the 100-point performance evaluation and its grade.
//! * [`report`]: the province's reports on a call or a year (counts by stage, approvals,
//!   disbursement, spending, grades by city, category and part; indicator totals) and
//!   each unit's grades.
//! * [`rules`]: the call's settings (`[rules]`: rubric, pass mark, panel, 公示, stage
//!   limits …), each with a documented default that is not a regulation.
//!
//! Every error a user can see implements [`UserFacing`]: a stable `code()` and a message
//! in Simplified Chinese (the default) and English. Amounts of money are always
//! [`grantflow_domain::Money`].

pub mod budget;
pub mod cancel;
pub mod catalogue;
pub mod demand;
pub mod evaluation;
pub mod export;
pub mod funding;
pub mod import;
pub mod indicator;
pub mod report;
pub mod rules;
pub mod similarity;
pub mod workbook_limits;

mod messages;

pub use messages::UserFacing;
