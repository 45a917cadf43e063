//! candle-distill: distill a fine-tuned BERT teacher into a tiny BiLSTM student.
//!
//! This facade re-exports the workspace crates for users who want one dependency:
//! [`data`] (`Dataset` → `Normalizer` → `Vocab` → `Batcher`), [`teacher`] (BERT classifier,
//! fine-tuning, `TeacherLogits`), [`student`] (`BiLstmClassifier`), [`trainer`] (losses, loop,
//! metrics), [`report`] (the report of a run folder).
pub use distill_data as data;
pub use distill_report as report;
pub use distill_student as student;
pub use distill_teacher as teacher;
pub use distill_trainer as trainer;
