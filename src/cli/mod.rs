//! The command line's document mode: inputs read line by line, outputs written in order.

pub mod lines;
pub mod many;
