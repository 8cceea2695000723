pub mod demo;
pub mod serve;
pub mod workflow;
