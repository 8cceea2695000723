pub mod backup;
pub mod bench;
pub mod bench_transitions;
pub mod demo;
pub mod migrate;
pub mod scheduler;
pub mod serve;
pub mod workflow;
