//! The serving figures, and PyTorch's beside them with ratios, as a Markdown table.

use super::{Serving, Torch};

/// The serving figures (and PyTorch's, with ratios) as a Markdown table.
pub fn table(i: &Serving, torch: Option<&Torch>, epoch_s: Option<f64>) -> String {
    let mut s = format!(
        "student {}/{} ({} layer{}), {} sentences, median of {} passes, {} thread{}{}\n\n",
        i.embedding_dim,
        i.hidden_size,
        i.num_layers,
        if i.num_layers == 1 { "" } else { "s" },
        i.sentences,
        i.repeat,
        i.threads,
        if i.threads == 1 { "" } else { "s" },
        torch.map_or(String::new(), |t| format!(
            "; PyTorch {} ({}, {}, {}/{}{}, batches of 256)",
            t.torch,
            match t.threads.unwrap_or(2) {
                1 => "1 thread".to_string(),
                n => format!("{n} threads"),
            },
            if t.packed { "packed" } else { "padded" },
            t.emb,
            t.hid,
            if t.layers == 1 {
                String::new()
            } else {
                format!(" × {} layers", t.layers)
            }
        )),
    );
    s.push_str("| | batched | per sentence (before) | gain |");
    if torch.is_some() {
        s.push_str(" PyTorch | batched vs PyTorch |");
    }
    s.push('\n');
    s.push_str(if torch.is_some() {
        "|---|---:|---:|---:|---:|---:|\n"
    } else {
        "|---|---:|---:|---:|\n"
    });
    let rate = |v: f64| format!("{v:.0}");
    let us = |v: f64| format!("{v:.2}");
    // (label, new, old, PyTorch, higher is better)
    let rows: Vec<(&str, f64, f64, Option<f64>, bool)> = vec![
        (
            "token ids in, sentences/s",
            i.model_sentences_per_second,
            i.per_sentence_sentences_per_second,
            torch.map(|t| t.dev_sent_per_s_batch256),
            true,
        ),
        (
            "raw text in, sentences/s",
            i.text_sentences_per_second,
            i.per_sentence_text_sentences_per_second,
            None,
            true,
        ),
        (
            "latency, token ids in, median µs",
            i.latency_us_median,
            i.per_sentence_latency_us_median,
            torch.map(|t| t.latency_us_median),
            false,
        ),
        (
            "latency, raw text in, median µs",
            i.text_latency_us_median,
            i.per_sentence_text_latency_us_median,
            None,
            false,
        ),
    ];
    for (label, new, old, theirs, higher) in rows {
        let fmt = if higher { rate } else { us };
        let gain = if higher { new / old } else { old / new };
        s.push_str(&format!(
            "| {label} | {} | {} | {gain:.1}× |",
            fmt(new),
            fmt(old)
        ));
        if torch.is_some() {
            match theirs {
                Some(t) => {
                    let r = if higher { new / t } else { t / new };
                    s.push_str(&format!(" {} | {r:.1}× |", fmt(t)));
                }
                None => s.push_str(" — | |"),
            }
        }
        s.push('\n');
    }
    if let (Some(t), Some(ours)) = (torch, epoch_s) {
        if let Some(theirs) = t.best_epoch_s {
            s.push_str(&format!(
                "| training epoch, best, s | {ours:.3} | | | {theirs:.3} | {:.1}× |\n",
                theirs / ours
            ));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_shows_gains_and_ratios_the_right_way_round() {
        let i = Serving {
            sentences: 872,
            repeat: 2,
            threads: 2,
            model_sentences_per_second: 1_000_000.0,
            per_sentence_sentences_per_second: 200_000.0,
            text_sentences_per_second: 400_000.0,
            per_sentence_text_sentences_per_second: 80_000.0,
            latency_us_median: 2.0,
            latency_us_p99: 4.0,
            per_sentence_latency_us_median: 8.0,
            text_latency_us_median: 2.5,
            per_sentence_text_latency_us_median: 17.5,
            embedding_dim: 16,
            hidden_size: 8,
            num_layers: 1,
        };
        let t = Torch {
            torch: "2.5.1".into(),
            packed: true,
            threads: Some(2),
            emb: 16,
            hid: 8,
            layers: 1,
            best_epoch_s: Some(4.0),
            dev_sent_per_s_batch256: 25_000.0,
            latency_us_median: 300.0,
        };
        let s = table(&i, Some(&t), Some(0.5));
        assert!(
            s.contains("| token ids in, sentences/s | 1000000 | 200000 | 5.0× | 25000 | 40.0× |"),
            "{s}"
        );
        assert!(
            s.contains(
                "| latency, token ids in, median µs | 2.00 | 8.00 | 4.0× | 300.00 | 150.0× |"
            ),
            "{s}"
        );
        assert!(
            s.contains("| latency, raw text in, median µs | 2.50 | 17.50 | 7.0× | — | |"),
            "{s}"
        );
        assert!(
            s.contains("| training epoch, best, s | 0.500 | | | 4.000 | 8.0× |"),
            "{s}"
        );
        assert!(
            s.contains("(2 threads, packed, 16/8, batches of 256)"),
            "{s}"
        );
        let deep = Torch { layers: 2, ..t };
        let s = table(&i, Some(&deep), None);
        assert!(
            s.contains("(2 threads, packed, 16/8 × 2 layers, batches"),
            "{s}"
        );
        let plain = table(&i, None, None);
        assert!(
            !plain.contains("PyTorch") && plain.contains("| 5.0× |\n"),
            "{plain}"
        );
    }
}
