//! The integration tests of the test kit's own processes: durability under SIGKILL and
//! review reminders through the scheduler.

mod crash;
mod review_reminders;
