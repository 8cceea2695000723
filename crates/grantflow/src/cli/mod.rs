pub mod bench_transitions;
pub mod demo;
pub mod serve;
pub mod workflow;
