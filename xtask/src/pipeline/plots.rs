//! The report's pictures, drawn with plotters as PNG and SVG from the same code:
//!
//! - `training`: one panel per student, loss per epoch (left axis) and validation accuracy
//!   (right axis), the teacher's dev accuracy dashed;
//! - `pr`: precision–recall curves of every model on dev, the teacher dashed;
//! - `confusion`: one 2×2 confusion matrix per model, rows gold, columns predicted.
//!
//! Text uses DejaVu Sans (`assets/fonts/`, Bitstream Vera licence), embedded in the binary
//! and registered with plotters' ab_glyph backend, so the PNGs look the same everywhere.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{anyhow, Context, Result};
use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::results::ModelResult;

static FONT: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans.ttf");
pub(super) const SANS: &str = "sans-serif";
/// Students' colours (matplotlib's tab10); the teacher is black and dashed.
pub(super) const PALETTE: [RGBColor; 7] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
];

/// One picture, as PNG and SVG.
pub struct Figure {
    pub title: String,
    pub png: PathBuf,
    pub svg: PathBuf,
}

pub(super) type DrawResult<E> = std::result::Result<(), DrawingAreaErrorKind<E>>;

/// Draws every picture into `dir`; `labels` are the dev gold labels.
pub fn draw_all(dir: &Path, models: &[ModelResult], labels: &[u32]) -> Result<Vec<Figure>> {
    register_font()?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let students = models.iter().filter(|m| !m.teacher).count().max(1);
    let cols = students.min(3);
    let rows = students.div_ceil(cols);
    let size = (cols as u32 * 520, rows as u32 * 380 + 90);
    let mut figures = vec![render(
        dir,
        "training",
        "Training curves",
        size,
        &Picture::Training(models),
    )?];
    figures.push(render(
        dir,
        "pr",
        "Precision–recall on dev",
        (900, 660),
        &Picture::Pr(models, labels),
    )?);
    let cols = models.len().min(4);
    let rows = models.len().div_ceil(cols);
    let size = (cols as u32 * 300, rows as u32 * 300 + 50);
    figures.push(render(
        dir,
        "confusion",
        "Confusion matrices on dev",
        size,
        &Picture::Confusion(models),
    )?);
    Ok(figures)
}

/// What to draw; one drawing routine serves both backends.
enum Picture<'a> {
    Training(&'a [ModelResult]),
    Pr(&'a [ModelResult], &'a [u32]),
    Confusion(&'a [ModelResult]),
}

impl Picture<'_> {
    fn draw<DB: DrawingBackend>(&self, area: DrawingArea<DB, Shift>) -> DrawResult<DB::ErrorType> {
        match self {
            Picture::Training(models) => super::curves::training(area, models),
            Picture::Pr(models, labels) => pr(area, models, labels),
            Picture::Confusion(models) => confusion(area, models),
        }
    }
}

fn register_font() -> Result<()> {
    static DONE: OnceLock<bool> = OnceLock::new();
    let ok =
        *DONE.get_or_init(|| plotters::style::register_font(SANS, FontStyle::Normal, FONT).is_ok());
    ok.then_some(())
        .ok_or_else(|| anyhow!("the embedded DejaVu Sans font did not load"))
}

/// Draws `draw` into `<stem>.png` and `<stem>.svg`, each written under a temporary name
/// and renamed into place.
fn render(
    dir: &Path,
    stem: &str,
    title: &str,
    size: (u32, u32),
    picture: &Picture,
) -> Result<Figure> {
    let (png, svg) = (
        dir.join(format!("{stem}.png")),
        dir.join(format!("{stem}.svg")),
    );
    let tmp = dir.join(format!(".{stem}.tmp.png"));
    {
        let area = BitMapBackend::new(&tmp, size).into_drawing_area();
        picture
            .draw(area)
            .map_err(|e| anyhow!("drawing {}: {e}", png.display()))?;
    }
    std::fs::rename(&tmp, &png).with_context(|| format!("renaming into {}", png.display()))?;
    let mut text = String::new();
    {
        let area = SVGBackend::with_string(&mut text, size).into_drawing_area();
        picture
            .draw(area)
            .map_err(|e| anyhow!("drawing {}: {e}", svg.display()))?;
    }
    distill_data::write_atomic(&svg, text.as_bytes())
        .with_context(|| format!("writing {}", svg.display()))?;
    Ok(Figure {
        title: title.into(),
        png,
        svg,
    })
}

pub(super) fn colour(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// Precision–recall curves of all models on one plot.
fn pr<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    models: &[ModelResult],
    labels: &[u32],
) -> DrawResult<DB::ErrorType> {
    root.fill(&WHITE)?;
    let curves: Vec<Vec<(f64, f64)>> = models
        .iter()
        .map(|m| distill_data::pr_curve(&m.scores, labels))
        .collect();
    let min_p = curves.iter().flatten().map(|p| p.1).fold(1.0f64, f64::min);
    let lo = ((min_p - 0.02) * 10.0).floor().clamp(0.0, 9.0) / 10.0;
    let mut chart = ChartBuilder::on(&root)
        .caption("Precision–recall on dev", (SANS, 24))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(64)
        .build_cartesian_2d(0f64..1.0, lo..1.005)?;
    chart
        .configure_mesh()
        .x_desc("recall")
        .y_desc("precision")
        .light_line_style(WHITE)
        .label_style((SANS, 14))
        .axis_desc_style((SANS, 16))
        .draw()?;
    let mut student = 0;
    for (m, curve) in models.iter().zip(curves) {
        let name = format!("{} (AP {:.3})", m.name, m.ap);
        if m.teacher {
            let style = BLACK.stroke_width(2);
            chart
                .draw_series(DashedLineSeries::new(curve, 8, 5, style))?
                .label(name)
                .legend(move |(x, y)| {
                    DashedPathElement::new(vec![(x, y), (x + 24, y)], 6, 4, style)
                });
        } else {
            let style = colour(student).stroke_width(2);
            student += 1;
            chart
                .draw_series(LineSeries::new(curve, style))?
                .label(name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], style));
        }
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerLeft)
        .margin(12)
        .label_font((SANS, 15))
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK.mix(0.4))
        .draw()?;
    root.present()
}

/// One confusion matrix per model: counts, and shares of each gold row as shading.
fn confusion<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    models: &[ModelResult],
) -> DrawResult<DB::ErrorType> {
    root.fill(&WHITE)?;
    let root = root.titled(
        "Confusion matrices on dev (rows: gold, columns: predicted)",
        (SANS, 22),
    )?;
    let cols = models.len().clamp(1, 4);
    let panels = root.split_evenly((models.len().div_ceil(cols).max(1), cols));
    let names = |v: &SegmentValue<u32>, flip: bool| match v {
        SegmentValue::CenterOf(i) => match (*i, flip) {
            (0, false) | (1, true) => "negative".to_string(),
            _ => "positive".to_string(),
        },
        _ => String::new(),
    };
    for (m, area) in models.iter().zip(&panels) {
        let mut chart = ChartBuilder::on(area)
            .caption(&m.name, (SANS, 17))
            .margin(12)
            .x_label_area_size(44)
            .y_label_area_size(76)
            // An integer range is inclusive: 0..1 is the two classes.
            .build_cartesian_2d((0u32..1).into_segmented(), (0u32..1).into_segmented())?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc("predicted")
            .y_desc("gold")
            .x_label_formatter(&|v| names(v, false))
            .y_label_formatter(&|v| names(v, true))
            .label_style((SANS, 13))
            .axis_desc_style((SANS, 14))
            .draw()?;
        for gold in 0..2usize {
            let total: u64 = m.confusion[gold].iter().sum();
            for pred in 0..2usize {
                let count = m.confusion[gold][pred];
                let share = if total > 0 {
                    count as f64 / total as f64
                } else {
                    0.0
                };
                // Gold 0 on top: y counts upwards.
                let (x, y) = (pred as u32, 1 - gold as u32);
                let fill = PALETTE[0].mix(0.12 + 0.88 * share).filled();
                let edge = |v: u32| {
                    if v > 1 {
                        SegmentValue::Last
                    } else {
                        SegmentValue::Exact(v)
                    }
                };
                let cell = [(edge(x), edge(y)), (edge(x + 1), edge(y + 1))];
                chart.draw_series(std::iter::once(Rectangle::new(cell, fill)))?;
                let ink = if share > 0.55 { WHITE } else { BLACK };
                let centre = (SegmentValue::CenterOf(x), SegmentValue::CenterOf(y));
                let big = (SANS, 20)
                    .into_font()
                    .color(&ink)
                    .pos(Pos::new(HPos::Center, VPos::Center));
                let small = (SANS, 13)
                    .into_font()
                    .color(&ink)
                    .pos(Pos::new(HPos::Center, VPos::Center));
                chart.draw_series(std::iter::once(
                    EmptyElement::at(centre)
                        + Text::new(count.to_string(), (0, -9), big)
                        + Text::new(format!("{:.1}%", share * 100.0), (0, 13), small),
                ))?;
            }
        }
    }
    root.present()
}
