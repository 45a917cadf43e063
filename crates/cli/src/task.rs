//! The task flags every command that reads data files shares (`--format`,
//! `--text-column`, `--text-pair-column`, `--label-column`): `distill_data`'s [`TaskArgs`],
//! which `cargo xtask pipeline` flattens too.

use distill_data::LabelSet;

pub use distill_data::TaskArgs;

/// `--labels a,b,c`: label names in id order.
pub fn parse_labels(s: &str) -> std::result::Result<LabelSet, String> {
    LabelSet::parse_list(s)
}
