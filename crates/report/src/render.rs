//! `report.md`, a self-contained `report.html` (plots embedded as base64 data URIs) and
//! `report.json` (the same numbers for scripts and tests), from [`results::collect`] and,
//! when a pipeline made the run, its `pipeline.json` (description, stage times, commands).
//! Both documents are built from the same [`Table`]s.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;

use crate::error::{Error, Result};
use crate::plots::{self, Figure};
use crate::results::{self, best_student, Dev, ModelResult, Selection};
use crate::run::{PipelineRecord, RunFolder, StageTime};

/// A table rendered both as markdown and HTML.
struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
    /// Leading columns of text, aligned left in HTML (1 or 2); the rest are numbers.
    text_columns: usize,
}

impl Table {
    fn new(header: &[&str]) -> Self {
        Self {
            header: header.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
            text_columns: 2,
        }
    }

    fn markdown(&self) -> String {
        let cell = |c: &String| c.replace('|', "\\|");
        let mut out = format!(
            "| {} |\n",
            self.header.iter().map(cell).collect::<Vec<_>>().join(" | ")
        );
        out += &format!(
            "|{}\n",
            self.header.iter().map(|_| "---|").collect::<String>()
        );
        for row in &self.rows {
            out += &format!(
                "| {} |\n",
                row.iter().map(cell).collect::<Vec<_>>().join(" | ")
            );
        }
        out
    }

    fn html(&self) -> String {
        let mut out = if self.text_columns == 1 {
            String::from("<table class=\"t1\">\n<thead><tr>")
        } else {
            String::from("<table>\n<thead><tr>")
        };
        for h in &self.header {
            let _ = write!(out, "<th>{}</th>", escape(h));
        }
        out += "</tr></thead>\n<tbody>\n";
        for row in &self.rows {
            out += "<tr>";
            for c in row {
                let _ = write!(out, "<td>{}</td>", escape(c));
            }
            out += "</tr>\n";
        }
        out + "</tbody>\n</table>\n"
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// `1234567` → `1,234,567`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let groups: Vec<&str> = digits
        .as_bytes()
        .rchunks(3)
        .rev()
        .map(|g| std::str::from_utf8(g).unwrap_or("?"))
        .collect();
    groups.join(",")
}

fn bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 20 => format!("{:.1} MB", n as f64 / (1u64 << 20) as f64),
        n if n >= 1 << 10 => format!("{:.0} KB", n as f64 / 1024.0),
        n => format!("{n} B"),
    }
}

fn micros(us: Option<f64>) -> String {
    match us {
        Some(us) if us >= 1000.0 => format!("{:.1} ms", us / 1000.0),
        Some(us) => format!("{us:.0} µs"),
        None => "–".into(),
    }
}

fn ratio(r: Option<f64>) -> String {
    r.map_or("–".into(), |r| {
        if r >= 10.0 {
            format!("{r:.0}×")
        } else {
            format!("{r:.1}×")
        }
    })
}

/// Throughput and latency speed-ups of `m` over the teacher.
fn speedups(m: &ModelResult, teacher: Option<&ModelResult>) -> (Option<f64>, Option<f64>) {
    let t = teacher;
    let thr = t.and_then(|t| Some(m.throughput? / t.throughput?));
    let lat = t.and_then(|t| Some(t.latency_us? / m.latency_us?));
    (thr, lat)
}

/// The results table; with more than two labels F1 is macro-F1 and has one column.
fn results_table(models: &[ModelResult], labels: usize) -> Table {
    let binary = labels == 2;
    let mut header = vec!["model", "what", "dev acc", "AP"];
    header.extend(if binary {
        &["F1", "macro-F1"][..]
    } else {
        &["macro-F1"][..]
    });
    let test = models.iter().any(|m| m.test.is_some());
    if test {
        header.extend(["test acc", "test macro-F1"]);
    }
    header.extend([
        "parameters",
        "size on disk",
        "CPU sentences/s",
        "CPU latency (1 sentence)",
        "speed-up: throughput",
        "speed-up: latency",
    ]);
    let mut t = Table::new(&header);
    let teacher = models.iter().find(|m| m.teacher);
    for m in models {
        let (thr, lat) = speedups(m, teacher);
        let mut row = vec![
            m.name.clone(),
            m.label.clone(),
            format!("{:.2}%", m.acc * 100.0),
            format!("{:.3}", m.ap),
        ];
        if binary {
            row.push(format!("{:.3}", m.f1));
        }
        row.push(format!("{:.3}", m.macro_f1));
        if test {
            row.extend(m.test.as_ref().map_or(["–".into(), "–".into()], |t| {
                [
                    format!("{:.2}%", t.acc * 100.0),
                    format!("{:.3}", t.macro_f1),
                ]
            }));
        }
        row.extend([
            thousands(m.params),
            bytes(m.size_bytes),
            m.throughput
                .map_or("–".into(), |v| thousands(v.round() as u64)),
            micros(m.latency_us),
            ratio(thr),
            ratio(lat),
        ]);
        t.rows.push(row);
    }
    t
}

/// What the AP and F1 columns of the results table mean for these labels.
fn metric_note(dev: &Dev) -> String {
    let macro_f1 =
        "macro-F1: the mean F1 over the labels that occur among the gold labels or the predictions";
    if dev.labels.len() == 2 {
        let one = dev.labels.name(1).unwrap_or("1");
        format!(
            "AP: average precision of the probability of label `{one}` (scikit-learn's \
             `average_precision_score`); F1: of label `{one}`; {macro_f1}."
        )
    } else {
        format!(
            "AP: the mean over labels of the average precision of that label's probability \
             against the rest (labels without gold examples left out); {macro_f1}."
        )
    }
}

/// Precision, recall, F1, support and one-vs-rest AP of each label for one model.
fn class_table(m: &ModelResult, dev: &Dev) -> Table {
    let mut t = Table::new(&["label", "precision", "recall", "F1", "support", "AP"]);
    t.text_columns = 1;
    for (k, c) in m.classes.iter().enumerate() {
        t.rows.push(vec![
            dev.labels.name(k as u32).unwrap_or("?").to_string(),
            format!("{:.3}", c.precision),
            format!("{:.3}", c.recall),
            format!("{:.3}", c.f1),
            c.support.to_string(),
            m.class_ap
                .get(k)
                .copied()
                .flatten()
                .map_or("–".into(), |v| format!("{v:.3}")),
        ]);
    }
    t
}

/// The per-label tables of the teacher and the best student, with their headings.
fn class_tables(models: &[ModelResult], dev: &Dev) -> Vec<(String, Table)> {
    let teacher = models.iter().find(|m| m.teacher);
    let student = best_student(models);
    teacher
        .map(|m| ("Teacher".to_string(), class_table(m, dev)))
        .into_iter()
        .chain(student.map(|m| {
            (
                format!("Best student by dev accuracy: {} ({})", m.name, m.label),
                class_table(m, dev),
            )
        }))
        .collect()
}

/// The per-label tables, then the confusion tables, of the teacher and the best student.
fn per_label_tables(models: &[ModelResult], dev: &Dev) -> Vec<(String, Table)> {
    let mut out = class_tables(models, dev);
    let chosen = models
        .iter()
        .filter(|m| m.teacher)
        .take(1)
        .chain(best_student(models));
    for m in chosen {
        out.push((
            format!(
                "Confusion on dev: {} (rows gold, columns predicted)",
                m.name
            ),
            confusion_table(m, dev),
        ));
    }
    out
}

/// The confusion matrix of `m` as a table: rows gold, columns predicted, counts.
fn confusion_table(m: &ModelResult, dev: &Dev) -> Table {
    let names: Vec<String> = (0..m.num_classes() as u32)
        .map(|k| dev.labels.name(k).unwrap_or("?").to_string())
        .collect();
    let mut header = vec!["gold \\ predicted".to_string()];
    header.extend(names.iter().cloned());
    let mut t = Table {
        header,
        rows: Vec::new(),
        text_columns: 1,
    };
    for (name, row) in names.iter().zip(&m.confusion) {
        let mut cells = vec![name.clone()];
        cells.extend(row.iter().map(|c| c.to_string()));
        t.rows.push(cells);
    }
    t
}

fn stages_table(stages: &[StageTime]) -> (Table, f64) {
    let mut t = Table::new(&["stage", "state", "wall time"]);
    let mut total = 0.0;
    for r in stages.iter().filter(|r| r.name != "report") {
        total += r.seconds.unwrap_or(0.0);
        t.rows.push(vec![
            r.name.clone(),
            r.state.clone(),
            r.seconds.map_or("–".into(), seconds),
        ]);
    }
    (t, total)
}

fn settings_table(pipeline: &PipelineRecord) -> Table {
    let mut t = Table::new(&["setting", "value"]);
    if !pipeline.name.is_empty() {
        t.rows.push(vec!["run".into(), pipeline.name.clone()]);
    }
    for (k, v) in pipeline.settings_rows() {
        t.rows.push(vec![k, v]);
    }
    t
}

/// `12.3 s` or `4 min 05 s`.
pub fn seconds(s: f64) -> String {
    if s < 60.0 {
        format!("{s:.1} s")
    } else {
        format!("{} min {:02.0} s", (s / 60.0).floor(), s % 60.0)
    }
}

/// The pipeline's paragraphs, then what the columns mean.
fn intro(pipeline: Option<&PipelineRecord>, models: &[ModelResult]) -> Vec<String> {
    let n = models.first().map_or(0, |m| m.n);
    let mut lines: Vec<String> = pipeline
        .and_then(|p| p.description.as_ref())
        .map(|d| d.intro.clone())
        .unwrap_or_default();
    lines.push(format!(
        "{n} dev sentences. Throughput: sentences per second over the dev set, raw text in \
         (tokenising included); students read the dev set in batches (sixteen sentences to a \
         SIMD block) on all cores, the teacher in batches of 64. Latency: median time to classify one sentence, raw text in. \
         Speed-ups are over the teacher. Size on disk: the files of the model folder (weights, \
         config, vocabulary or tokenizer)."
    ));
    lines
}

/// What [`write`] wrote.
#[derive(Clone, Debug)]
pub struct Written {
    pub markdown: PathBuf,
    pub html: PathBuf,
    pub json: PathBuf,
    /// The pictures, PNG and SVG of each.
    pub figures: Vec<Figure>,
}

/// Writes `report.md`, `report.html`, `report.json` and `plots/` into `out` (the run
/// folder itself when `None`), for the models of `selection`.
pub fn write(run: &RunFolder, selection: &Selection, out: Option<&Path>) -> Result<Written> {
    let out = out.unwrap_or(&run.dir);
    let pipeline = PipelineRecord::load(&run.pipeline_json())?;
    let pipeline = pipeline.as_ref();
    let (models, dev) = results::collect(run, pipeline, selection)?;
    let figures = plots::draw_all(&out.join("plots"), &models, &dev)?;
    let results = results_table(&models, dev.labels.len());
    let note = metric_note(&dev);
    let per_label = per_label_tables(&models, &dev);
    let stages: &[StageTime] = pipeline.map_or(&[], |p| &p.stages);
    let (stage_table, total) = stages_table(stages);
    let settings = pipeline.map(settings_table);
    let intro = intro(pipeline, &models);
    let commands: Vec<&str> = stages.iter().map(|r| r.command.as_str()).collect();
    let title = match pipeline.filter(|p| !p.name.is_empty()) {
        Some(p) => format!("candle-distill pipeline report: {}", p.name),
        None => format!(
            "candle-distill report: {}",
            run.dir
                .canonicalize()
                .unwrap_or_else(|_| run.dir.clone())
                .file_name()
                .map_or_else(
                    || run.dir.display().to_string(),
                    |n| n.to_string_lossy().into_owned()
                )
        ),
    };

    let mut md = format!("# {title}\n\n");
    for p in &intro {
        md += &format!("{p}\n\n");
    }
    md += &format!(
        "## Results on dev\n\n{}\n{note}\n\n## Per label\n\n",
        results.markdown()
    );
    for (heading, table) in &per_label {
        md += &format!("### {heading}\n\n{}\n", table.markdown());
    }
    md += "## Pictures\n\n";
    for f in &figures {
        let rel = |p: &Path| p.strip_prefix(out).unwrap_or(p).display().to_string();
        md += &format!(
            "### {}\n\n![{}]({})\n\n([SVG]({}))\n\n",
            f.title,
            f.title,
            rel(&f.png),
            rel(&f.svg)
        );
    }
    if !stages.is_empty() {
        md += &format!(
            "## Stages\n\nWall time of each stage when it last ran (total {}).\n\n{}\n",
            seconds(total),
            stage_table.markdown()
        );
    }
    if let Some(settings) = &settings {
        md += &format!("## Settings\n\n{}\n", settings.markdown());
    }
    if !commands.is_empty() {
        md += &format!(
            "## Commands\n\nEach stage by hand, from the folder the pipeline ran in:\n\n```sh\n{}\n```\n",
            commands.join("\n")
        );
    }
    let md_path = out.join("report.md");
    write_file(&md_path, md.as_bytes())?;

    let html = html(
        &title,
        &intro,
        (&results, &note, &per_label),
        &figures,
        (!stages.is_empty()).then_some((&stage_table, total)),
        settings.as_ref(),
        &commands,
    )?;
    let html_path = out.join("report.html");
    write_file(&html_path, html.as_bytes())?;

    let teacher = models.iter().find(|m| m.teacher);
    let json_models: Vec<serde_json::Value> = models
        .iter()
        .map(|m| {
            let (thr, lat) = speedups(m, teacher);
            let mut v = serde_json::to_value(m).unwrap_or_default();
            v["speedup_throughput"] = serde_json::json!(thr);
            v["speedup_latency"] = serde_json::json!(lat);
            v
        })
        .collect();
    let stage_times: Vec<serde_json::Value> = stages
        .iter()
        .map(|r| serde_json::json!({"name": r.name, "state": r.state, "seconds": r.seconds}))
        .collect();
    let json = serde_json::json!({
        "name": pipeline.map(|p| p.name.clone()),
        "device": pipeline.map(|p| p.device.clone()),
        "student_device": pipeline
            .and_then(|p| p.description.as_ref())
            .and_then(|d| d.student_device.clone()),
        "settings": pipeline.map(|p| p.settings.clone()),
        "labels": dev.labels.names(),
        "models": json_models,
        "stages": stage_times,
    });
    let json_path = out.join("report.json");
    let text = serde_json::to_string_pretty(&json).unwrap_or_default() + "\n";
    write_file(&json_path, text.as_bytes())?;
    Ok(Written {
        markdown: md_path,
        html: html_path,
        json: json_path,
        figures,
    })
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    distill_data::write_atomic(path, bytes).map_err(|e| Error::io("write", path, e))
}

const STYLE: &str = "body{font-family:system-ui,-apple-system,'DejaVu Sans',sans-serif;max-width:1600px;margin:2em auto;padding:0 1em;color:#222}\
table{border-collapse:collapse;margin:1em 0;font-size:14px}th,td{border:1px solid #ccc;padding:4px 10px;text-align:right}\
th{background:#f3f3f3}td:first-child,td:nth-child(2),th:first-child,th:nth-child(2){text-align:left}\
.t1 td:nth-child(2),.t1 th:nth-child(2){text-align:right}img{max-width:100%;border:1px solid #eee}pre{background:#f6f6f6;padding:1em;overflow-x:auto;font-size:12px}";

#[allow(clippy::too_many_arguments)]
fn html(
    title: &str,
    intro: &[String],
    (results, note, per_label): (&Table, &str, &[(String, Table)]),
    figures: &[Figure],
    stages: Option<(&Table, f64)>,
    settings: Option<&Table>,
    commands: &[&str],
) -> Result<String> {
    let mut out = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{t}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{t}</h1>\n",
        t = escape(title)
    );
    for p in intro {
        let _ = writeln!(out, "<p>{}</p>", escape(p));
    }
    let _ = write!(
        out,
        "<h2>Results on dev</h2>\n{}<p>{}</p>\n<h2>Per label</h2>\n",
        results.html(),
        escape(note)
    );
    for (heading, table) in per_label {
        let _ = write!(out, "<h3>{}</h3>\n{}", escape(heading), table.html());
    }
    out += "<h2>Pictures</h2>\n";
    for f in figures {
        let png = std::fs::read(&f.png).map_err(|e| Error::io("read", &f.png, e))?;
        let data = base64::engine::general_purpose::STANDARD.encode(png);
        let _ = writeln!(
            out,
            "<h3>{t}</h3>\n<img alt=\"{t}\" src=\"data:image/png;base64,{data}\">",
            t = escape(&f.title)
        );
    }
    if let Some((stages, total)) = stages {
        let _ = write!(
            out,
            "<h2>Stages</h2>\n<p>Wall time of each stage when it last ran (total {}).</p>\n{}",
            seconds(total),
            stages.html()
        );
    }
    if let Some(settings) = settings {
        let _ = write!(out, "<h2>Settings</h2>\n{}", settings.html());
    }
    if !commands.is_empty() {
        let _ = write!(
            out,
            "<h2>Commands</h2>\n<pre>{}</pre>\n",
            escape(&commands.join("\n"))
        );
    }
    out += "</body>\n</html>\n";
    Ok(out)
}

#[cfg(test)]
#[path = "render_tests.rs"]
mod tests;
