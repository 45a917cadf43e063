//! The candle-distill report of a run folder: the teacher's and the students' evaluation
//! outputs become `report.md`, a self-contained `report.html`, `report.json` and
//! `plots/{training,pr,confusion}.{png,svg}`. `distill report --run DIR` is this crate's
//! [`write`]; `cargo xtask pipeline` calls that command as its last stage.
//!
//! ```text
//! RunFolder ─ results::collect ─ [ModelResult] (teacher first), Dev (gold labels)
//!     ├─ plots::draw_all → training curves, precision–recall, confusion matrices
//!     └─ render::write   → report.md, report.html, report.json
//! ```
//!
//! [`run`] names the files a run folder holds and what is read of `pipeline.json` (the
//! pipeline's description of its run, stage times and commands), [`results`] gathers
//! each model's numbers (per-label metrics recomputed from its confusion matrix,
//! one-vs-rest AP from its class probabilities, parameters, size, timing, training curve),
//! [`plots`] and [`curves`] draw the pictures, [`render`] writes the documents.

pub mod curves;
pub mod error;
pub mod plots;
pub mod render;
pub mod results;
pub mod run;

pub use error::{Error, Result};
pub use render::{write, Written};
pub use results::{collect, ModelResult, Selection};
pub use run::{evaluated_students, Description, PipelineRecord, RunFolder, StageTime};
