//! The report's pictures, drawn with plotters as PNG and SVG from the same code:
//!
//! - `training`: one panel per student, loss per epoch (left axis) and validation accuracy
//!   (right axis), the teacher's dev accuracy dashed;
//! - `pr`: precision–recall curves of every model on dev, the teacher dashed: of label 1
//!   for two labels, else one panel per label (that label against the rest);
//! - `confusion`: one C×C confusion matrix per model, rows gold, columns predicted, named
//!   by label, with counts and row shares (the shading).
//!
//! Text uses DejaVu Sans (`assets/fonts/`, Bitstream Vera licence), embedded in the binary
//! and registered with plotters' ab_glyph backend, so the PNGs look the same everywhere.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use distill_data::metrics::class_pr_curve;
use distill_data::LabelSet;

use crate::error::{Error, Result};
use crate::results::{Dev, ModelResult};

static FONT: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans.ttf");
pub(crate) const SANS: &str = "sans-serif";
/// Students' colours (matplotlib's tab10); the teacher is black and dashed.
pub(crate) const PALETTE: [RGBColor; 7] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
];

/// One picture, as PNG and SVG.
#[derive(Clone, Debug)]
pub struct Figure {
    pub title: String,
    pub png: PathBuf,
    pub svg: PathBuf,
}

pub(crate) type DrawResult<E> = std::result::Result<(), DrawingAreaErrorKind<E>>;

/// Draws every picture into `dir`; `dev` holds the gold labels and their names.
pub fn draw_all(dir: &Path, models: &[ModelResult], dev: &Dev) -> Result<Vec<Figure>> {
    register_font(dir)?;
    std::fs::create_dir_all(dir).map_err(|e| Error::io("create", dir, e))?;
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
    let c = dev.labels.len();
    let (title, size) = if c == 2 {
        ("Precision–recall on dev", (900, 660))
    } else {
        let cols = c.min(3);
        let rows = c.div_ceil(cols) as u32;
        (
            "Precision–recall on dev, each label against the rest",
            (cols as u32 * 460, rows * 400 + 100),
        )
    };
    figures.push(render(dir, "pr", title, size, &Picture::Pr(models, dev))?);
    let cols = models.len().clamp(1, if c > 2 { 3 } else { 4 });
    let rows = models.len().div_ceil(cols).max(1);
    let side = confusion_panel_side(c, &dev.labels);
    let size = (cols as u32 * side, rows as u32 * side + 50);
    figures.push(render(
        dir,
        "confusion",
        "Confusion matrices on dev",
        size,
        &Picture::Confusion(models, dev),
    )?);
    Ok(figures)
}

/// What to draw; one drawing routine serves both backends.
enum Picture<'a> {
    Training(&'a [ModelResult]),
    Pr(&'a [ModelResult], &'a Dev),
    Confusion(&'a [ModelResult], &'a Dev),
}

impl Picture<'_> {
    fn draw<DB: DrawingBackend>(&self, area: DrawingArea<DB, Shift>) -> DrawResult<DB::ErrorType> {
        match self {
            Picture::Training(models) => crate::curves::training(area, models),
            Picture::Pr(models, dev) if dev.labels.len() == 2 => pr(area, models, dev),
            Picture::Pr(models, dev) => pr_per_class(area, models, dev),
            Picture::Confusion(models, dev) => confusion(area, models, dev),
        }
    }
}

fn register_font(dir: &Path) -> Result<()> {
    static DONE: OnceLock<bool> = OnceLock::new();
    let ok =
        *DONE.get_or_init(|| plotters::style::register_font(SANS, FontStyle::Normal, FONT).is_ok());
    ok.then_some(()).ok_or_else(|| Error::Plot {
        path: dir.to_path_buf(),
        reason: "the embedded DejaVu Sans font did not load".into(),
    })
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
        picture.draw(area).map_err(|e| Error::Plot {
            path: png.clone(),
            reason: e.to_string(),
        })?;
    }
    std::fs::rename(&tmp, &png).map_err(|e| Error::io("rename into", &png, e))?;
    let mut text = String::new();
    {
        let area = SVGBackend::with_string(&mut text, size).into_drawing_area();
        picture.draw(area).map_err(|e| Error::Plot {
            path: svg.clone(),
            reason: e.to_string(),
        })?;
    }
    distill_data::write_atomic(&svg, text.as_bytes()).map_err(|e| Error::io("write", &svg, e))?;
    Ok(Figure {
        title: title.into(),
        png,
        svg,
    })
}

pub(crate) fn colour(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// Precision–recall curves of label 1 of all models on one plot (two labels).
fn pr<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    models: &[ModelResult],
    dev: &Dev,
) -> DrawResult<DB::ErrorType> {
    root.fill(&WHITE)?;
    let curves: Vec<Vec<(f64, f64)>> = models
        .iter()
        .map(|m| class_pr_curve(&m.scores, 2, &dev.gold, 1))
        .collect();
    let mut chart = pr_chart(&root, "Precision–recall on dev", 24, &curves)?;
    let mut student = 0;
    for (m, curve) in models.iter().zip(curves) {
        let name = format!("{} (AP {:.3})", m.name, m.ap);
        let (style, dashed) = model_style(m, &mut student);
        if dashed {
            chart
                .draw_series(DashedLineSeries::new(curve, 8, 5, style))?
                .label(name)
                .legend(move |(x, y)| {
                    DashedPathElement::new(vec![(x, y), (x + 24, y)], 6, 4, style)
                });
        } else {
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

/// One panel per label: the precision–recall curve of that label against the rest, for
/// every model, and one legend row with each model's macro AP.
fn pr_per_class<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    models: &[ModelResult],
    dev: &Dev,
) -> DrawResult<DB::ErrorType> {
    root.fill(&WHITE)?;
    let root = root.titled(
        "Precision–recall on dev, each label against the rest",
        (SANS, 24),
    )?;
    let (panels_area, legend_area) = root.split_vertically(root.dim_in_pixel().1 - 44);
    let c = dev.labels.len();
    let cols = c.clamp(1, 3);
    let panels = panels_area.split_evenly((c.div_ceil(cols).max(1), cols));
    for (k, area) in panels.iter().enumerate().take(c) {
        let curves: Vec<Vec<(f64, f64)>> = models
            .iter()
            .map(|m| class_pr_curve(&m.scores, c, &dev.gold, k as u32))
            .collect();
        let name = dev.labels.name(k as u32).unwrap_or("?");
        let support = dev.gold.iter().filter(|&&g| g as usize == k).count();
        let caption = format!("{name} ({support} gold)");
        let mut chart = pr_chart(area, &caption, 17, &curves)?;
        let mut student = 0;
        for (m, curve) in models.iter().zip(curves) {
            let (style, dashed) = model_style(m, &mut student);
            if dashed {
                chart.draw_series(DashedLineSeries::new(curve, 8, 5, style))?;
            } else {
                chart.draw_series(LineSeries::new(curve, style))?;
            }
        }
    }
    let mut student = 0;
    let names: Vec<(String, RGBColor, bool)> = models
        .iter()
        .map(|m| {
            let (_, dashed) = model_style(m, &mut student);
            let c = if dashed { BLACK } else { colour(student - 1) };
            (format!("{} (macro AP {:.3})", m.name, m.ap), c, dashed)
        })
        .collect();
    let items: Vec<(&str, RGBColor, bool)> =
        names.iter().map(|(t, c, d)| (t.as_str(), *c, *d)).collect();
    crate::curves::legend_row(&legend_area, &items)?;
    root.present()
}

/// A precision–recall chart whose precision axis starts just below the lowest point.
#[allow(clippy::type_complexity)]
fn pr_chart<'a, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, Shift>,
    caption: &str,
    caption_size: u32,
    curves: &[Vec<(f64, f64)>],
) -> std::result::Result<
    ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    DrawingAreaErrorKind<DB::ErrorType>,
> {
    let min_p = curves.iter().flatten().map(|p| p.1).fold(1.0f64, f64::min);
    let lo = ((min_p - 0.02) * 10.0).floor().clamp(0.0, 9.0) / 10.0;
    let mut chart = ChartBuilder::on(area)
        .caption(caption, (SANS, caption_size))
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
    Ok(chart)
}

/// The teacher black and dashed, students in palette order (`student` counts them).
fn model_style(m: &ModelResult, student: &mut usize) -> (ShapeStyle, bool) {
    if m.teacher {
        (BLACK.stroke_width(2), true)
    } else {
        *student += 1;
        (colour(*student - 1).stroke_width(2), false)
    }
}

/// Pixels per side of one confusion panel for `c` labels.
fn confusion_panel_side(c: usize, labels: &LabelSet) -> u32 {
    if c <= 2 {
        return 300;
    }
    let longest = longest_name(labels) as u32;
    // Cells of 64 px, the gold names on the left, the rotated predicted names below.
    (64 * c as u32 + 60 + 8 * longest).max(300)
}

/// Characters of the longest label name, as shown (cut to 18).
fn longest_name(labels: &LabelSet) -> usize {
    labels
        .names()
        .iter()
        .map(|n| abbreviate(n, 18).chars().count())
        .max()
        .unwrap_or(1)
}

/// `name` cut to `max` characters, the last one an ellipsis when cut.
pub(crate) fn abbreviate(name: &str, max: usize) -> String {
    if name.chars().count() <= max {
        name.to_string()
    } else {
        name.chars().take(max - 1).chain(['…']).collect()
    }
}

/// One confusion matrix per model: counts, and shares of each gold row as shading.
fn confusion<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    models: &[ModelResult],
    dev: &Dev,
) -> DrawResult<DB::ErrorType> {
    root.fill(&WHITE)?;
    let root = root.titled(
        "Confusion matrices on dev (rows: gold, columns: predicted; shading: share of the gold row)",
        (SANS, 20),
    )?;
    let c = dev.labels.len();
    let cols = models.len().clamp(1, if c > 2 { 3 } else { 4 });
    let panels = root.split_evenly((models.len().div_ceil(cols).max(1), cols));
    // SST-2's `0`/`1` read better as words; other names are shown as given, cut to 18.
    let names: Vec<String> = if dev.labels == LabelSet::binary() {
        vec!["negative".into(), "positive".into()]
    } else {
        dev.labels
            .names()
            .iter()
            .map(|n| abbreviate(n, 18))
            .collect()
    };
    let longest = names.iter().map(|n| n.chars().count()).max().unwrap_or(1) as u32;
    // Names wider than a column are written downwards.
    let rotate = c > 2 && longest > 7;
    let (x_area, y_area) = if c <= 2 {
        (44, 76)
    } else {
        let x = if rotate { 28 + 6 * longest } else { 44 };
        (x, 28 + 6 * longest)
    };
    let (big, small) = if c <= 4 { (20, 13) } else { (16, 11) };
    let top = c as u32 - 1;
    for (m, area) in models.iter().zip(&panels) {
        let label = |v: &SegmentValue<u32>, flip: bool| match v {
            SegmentValue::CenterOf(i) if *i <= top => {
                names[if flip { top - i } else { *i } as usize].clone()
            }
            _ => String::new(),
        };
        let mut chart = ChartBuilder::on(area)
            .caption(&m.name, (SANS, 17))
            .margin(12)
            .x_label_area_size(x_area)
            .y_label_area_size(y_area)
            // An integer range is inclusive: 0..top is the c classes.
            .build_cartesian_2d((0u32..top).into_segmented(), (0u32..top).into_segmented())?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc("predicted")
            .y_desc("gold")
            // Rotated names are drawn below, as plotters centres rotated tick labels on
            // the tick, across the matrix.
            .x_label_formatter(&|v| {
                if rotate {
                    String::new()
                } else {
                    label(v, false)
                }
            })
            .y_label_formatter(&|v| label(v, true))
            .label_style((SANS, 13))
            .axis_desc_style((SANS, 14))
            .draw()?;
        if rotate {
            let base = area.get_base_pixel();
            let (_, ys) = chart.plotting_area().get_pixel_range();
            let font = (SANS, 13)
                .into_font()
                .transform(FontTransform::Rotate90)
                .color(&BLACK);
            for (k, name) in names.iter().enumerate() {
                let centre = SegmentValue::CenterOf(k as u32);
                let (x, _) = chart.backend_coord(&(centre, SegmentValue::Exact(0)));
                // Rotated a quarter turn clockwise, the text's top edge faces left.
                let at = (x - base.0 + 7, ys.end - base.1 + 12);
                area.draw(&Text::new(name.clone(), at, font.clone()))?;
            }
        }
        for gold in 0..c {
            let total: usize = m.confusion[gold].iter().sum();
            for pred in 0..c {
                let count = m.confusion[gold][pred];
                let share = if total > 0 {
                    count as f64 / total as f64
                } else {
                    0.0
                };
                // Gold 0 on top: y counts upwards.
                let (x, y) = (pred as u32, top - gold as u32);
                let fill = PALETTE[0].mix(0.12 + 0.88 * share).filled();
                let edge = |v: u32| {
                    if v > top {
                        SegmentValue::Last
                    } else {
                        SegmentValue::Exact(v)
                    }
                };
                let cell = [(edge(x), edge(y)), (edge(x + 1), edge(y + 1))];
                chart.draw_series(std::iter::once(Rectangle::new(cell, fill)))?;
                let ink = if share > 0.55 { WHITE } else { BLACK };
                let centre = (SegmentValue::CenterOf(x), SegmentValue::CenterOf(y));
                let font = |size: u32| {
                    (SANS, size)
                        .into_font()
                        .color(&ink)
                        .pos(Pos::new(HPos::Center, VPos::Center))
                };
                let gap = small as i32;
                chart.draw_series(std::iter::once(
                    EmptyElement::at(centre)
                        + Text::new(count.to_string(), (0, -gap * 2 / 3), font(big))
                        + Text::new(format!("{:.0}%", share * 100.0), (0, gap), font(small)),
                ))?;
            }
        }
    }
    root.present()
}
