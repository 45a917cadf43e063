//! Training curves: one panel per student, loss per epoch on the left axis, validation
//! accuracy on the right, the teacher's dev accuracy as a dashed reference line, and one
//! legend row for the whole figure.

use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use distill_data::EpochRecord;

use crate::plots::{colour, DrawResult, SANS};
use crate::results::ModelResult;

/// Loss and validation accuracy per epoch, one panel per student.
pub(crate) fn training<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    models: &[ModelResult],
) -> DrawResult<DB::ErrorType> {
    root.fill(&WHITE)?;
    let root = root.titled(
        "Training curves (validation split of the training data)",
        (SANS, 24),
    )?;
    let (panels_area, legend_area) = root.split_vertically(root.dim_in_pixel().1 - 44);
    let students: Vec<&ModelResult> = models.iter().filter(|m| !m.teacher).collect();
    let teacher_acc = models.iter().find(|m| m.teacher).map(|m| m.acc);
    let cols = students.len().clamp(1, 3);
    let panels = panels_area.split_evenly((students.len().div_ceil(cols).max(1), cols));
    for (m, area) in students.iter().zip(&panels) {
        let last = m.epochs.len().max(1) as i32;
        let loss_max = m
            .epochs
            .iter()
            .flat_map(|e| [e.train_loss, e.val_loss])
            .fold(0.0f64, f64::max);
        let loss_max = if loss_max > 0.0 { loss_max * 1.15 } else { 1.0 };
        let accs: Vec<f64> = m
            .epochs
            .iter()
            .map(|e| e.val_acc)
            .chain(teacher_acc)
            .collect();
        let (lo, hi) = padded_range(&accs);
        let mut chart = ChartBuilder::on(area)
            .caption(&m.name, (SANS, 18))
            .margin(10)
            .x_label_area_size(38)
            .y_label_area_size(56)
            .right_y_label_area_size(56)
            .build_cartesian_2d(0..last + 1, 0f64..loss_max)?
            .set_secondary_coord(0..last + 1, lo..hi);
        chart
            .configure_mesh()
            .x_desc("epoch")
            .y_desc("loss")
            .x_labels((last as usize + 2).min(11))
            .y_labels(6)
            .light_line_style(WHITE.mix(0.0))
            .label_style((SANS, 13))
            .axis_desc_style((SANS, 14))
            .draw()?;
        chart
            .configure_secondary_axes()
            .y_desc("val accuracy")
            .y_labels(6)
            .y_label_formatter(&|v| format!("{:.0}%", v * 100.0))
            .label_style((SANS, 13))
            .axis_desc_style((SANS, 14))
            .draw()?;
        let series = |f: fn(&EpochRecord) -> f64| -> Vec<(i32, f64)> {
            m.epochs.iter().map(|e| (e.epoch as i32, f(e))).collect()
        };
        for (points, c) in [
            (series(|e| e.train_loss), colour(0)),
            (series(|e| e.val_loss), colour(1)),
        ] {
            chart.draw_series(LineSeries::new(points.clone(), c.stroke_width(2)))?;
            chart.draw_series(points.iter().map(|&p| Circle::new(p, 3, c.filled())))?;
        }
        let acc = series(|e| e.val_acc);
        chart.draw_secondary_series(LineSeries::new(acc.clone(), colour(2).stroke_width(2)))?;
        chart.draw_secondary_series(acc.iter().map(|&p| Circle::new(p, 3, colour(2).filled())))?;
        if let Some(t) = teacher_acc {
            let style = BLACK.stroke_width(2);
            chart.draw_secondary_series(DashedLineSeries::new(
                vec![(0, t), (last + 1, t)],
                8,
                6,
                style,
            ))?;
        }
    }
    let items = [
        ("train loss (left)", colour(0), false),
        ("validation loss (left)", colour(1), false),
        ("validation accuracy (right)", colour(2), false),
        ("teacher dev accuracy (right)", BLACK, true),
    ];
    legend_row(&legend_area, &items)?;
    root.present()
}

/// `[min − pad, max + pad]` within `[0, 1]`, at least 0.1 wide.
fn padded_range(values: &[f64]) -> (f64, f64) {
    let min = values.iter().cloned().fold(f64::INFINITY, f64::min);
    let max = values.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    if !min.is_finite() || !max.is_finite() {
        return (0.0, 1.0);
    }
    let (mut lo, mut hi) = ((min - 0.05).max(0.0), (max + 0.05).min(1.0));
    if hi - lo < 0.1 {
        let mid = (lo + hi) / 2.0;
        (lo, hi) = ((mid - 0.05).max(0.0), (mid + 0.05).min(1.0));
    }
    (lo, hi)
}

/// A centred row of legend entries: a line (dashed or solid) and its text.
pub(crate) fn legend_row<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    items: &[(&str, RGBColor, bool)],
) -> DrawResult<DB::ErrorType> {
    let font = (SANS, 15).into_font().color(&BLACK);
    let widths: Vec<i32> = items
        .iter()
        .map(|(t, ..)| area.estimate_text_size(t, &font).map(|(w, _)| w as i32))
        .collect::<std::result::Result<_, _>>()?;
    let (line, gap, spacing) = (34, 8, 28);
    let total: i32 =
        widths.iter().map(|w| line + gap + w).sum::<i32>() + spacing * (items.len() as i32 - 1);
    let (w, h) = area.dim_in_pixel();
    let mut x = (w as i32 - total).max(0) / 2;
    let y = h as i32 / 2;
    for ((text, c, dashed), width) in items.iter().zip(widths) {
        let style = c.stroke_width(2);
        if *dashed {
            area.draw(&DashedPathElement::new(
                vec![(x, y), (x + line, y)],
                8,
                5,
                style,
            ))?;
        } else {
            area.draw(&PathElement::new(vec![(x, y), (x + line, y)], style))?;
        }
        let pos = Pos::new(HPos::Left, VPos::Center);
        area.draw(&Text::new(
            text.to_string(),
            (x + line + gap, y),
            font.clone().pos(pos),
        ))?;
        x += line + gap + width + spacing;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accuracy_axis_is_padded_and_clamped() {
        assert_eq!(padded_range(&[]), (0.0, 1.0));
        let (lo, hi) = padded_range(&[0.8, 0.9]);
        assert!((lo - 0.75).abs() < 1e-9 && (hi - 0.95).abs() < 1e-9);
        let (lo, hi) = padded_range(&[0.99]);
        assert!(hi <= 1.0 && hi - lo >= 0.05);
    }
}
