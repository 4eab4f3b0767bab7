//! Redaction measured: the development corpus, a held-out set of strings the rules were not written
//! against, and the end-to-end guarantee that no secret byte leaves the process through the real
//! OTLP exporter.

mod allocations;
mod corpus;
mod end_to_end;
mod generated;
mod held_out;
mod outside;
