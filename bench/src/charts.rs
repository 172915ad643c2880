//! SVG charts, drawn with `plotters` (SVG backend only, no font files: the
//! SVG names a font family and the viewer draws the text).
//!
//! Two shapes cover the report: panels of bars (one bar per engine or per
//! query) and panels of lines on log–log axes (a measure against state size).

use std::path::Path;

use anyhow::{anyhow, Result};
use plotters::coord::Shift;
use plotters::prelude::*;

/// Colours of series and bars, in order (ours first).
const COLORS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

pub fn color(i: usize) -> RGBColor {
    COLORS[i % COLORS.len()]
}

/// One panel of bars: a value per label.
pub struct BarPanel {
    pub title: String,
    pub y_desc: String,
    pub bars: Vec<(String, f64)>,
    /// Colour each bar by its position (engines), or all alike (queries).
    pub color_by_bar: bool,
}

/// One panel of lines: `(x, y)` points per named series, log–log.
pub struct LinePanel {
    pub title: String,
    pub x_desc: String,
    pub y_desc: String,
    pub series: Vec<(String, Vec<(f64, f64)>)>,
}

/// `1234567.0` as `1.23M`.
pub fn si(v: f64) -> String {
    let a = v.abs();
    if a >= 1e9 {
        format!("{:.2}G", v / 1e9)
    } else if a >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if a >= 1e3 {
        format!("{:.1}K", v / 1e3)
    } else if a >= 10.0 || a == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.3}")
    }
}

fn err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow!("drawing a chart: {e:?}")
}

/// Draws `panels` in a grid of `cols` columns into the SVG file `path`.
pub fn bars(path: &Path, cols: usize, panel_size: (u32, u32), panels: &[BarPanel]) -> Result<()> {
    let cols = cols.max(1);
    let rows = panels.len().div_ceil(cols).max(1);
    let size = (panel_size.0 * cols as u32, panel_size.1 * rows as u32);
    let root = SVGBackend::new(path, size).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    for (area, panel) in root.split_evenly((rows, cols)).iter().zip(panels) {
        bar_panel(area, panel)?;
    }
    root.present().map_err(err)?;
    Ok(())
}

fn bar_panel(area: &DrawingArea<SVGBackend, Shift>, p: &BarPanel) -> Result<()> {
    let n = p.bars.len().max(1);
    let max = p.bars.iter().map(|b| b.1).fold(0.0f64, f64::max);
    let top = if max > 0.0 { max * 1.15 } else { 1.0 };
    let many = p.bars.len() > 8;
    let mut chart = ChartBuilder::on(area)
        .caption(&p.title, ("sans-serif", 16))
        .margin(10)
        .x_label_area_size(if many { 40 } else { 30 })
        .y_label_area_size(70)
        .build_cartesian_2d((0..n).into_segmented(), 0f64..top)
        .map_err(err)?;
    let labels: Vec<String> = p.bars.iter().map(|b| b.0.clone()).collect();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n)
        .x_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) => labels.get(*i).cloned().unwrap_or_default(),
            _ => String::new(),
        })
        .x_label_style(("sans-serif", if many { 11 } else { 13 }))
        .y_desc(p.y_desc.as_str())
        .y_label_formatter(&|y| si(*y))
        .draw()
        .map_err(err)?;
    chart
        .draw_series(p.bars.iter().enumerate().map(|(i, (_, v))| {
            let c = if p.color_by_bar { color(i) } else { color(0) };
            let mut bar = Rectangle::new(
                [
                    (SegmentValue::Exact(i), 0.0),
                    (SegmentValue::Exact(i + 1), *v),
                ],
                c.filled(),
            );
            bar.set_margin(0, 0, if many { 2 } else { 12 }, if many { 2 } else { 12 });
            bar
        }))
        .map_err(err)?;
    if !many {
        chart
            .draw_series(p.bars.iter().enumerate().map(|(i, (_, v))| {
                Text::new(
                    si(*v),
                    (SegmentValue::CenterOf(i), *v + top * 0.02),
                    ("sans-serif", 12).into_font(),
                )
            }))
            .map_err(err)?;
    }
    Ok(())
}

/// Draws line `panels` side by side into the SVG file `path`.
pub fn lines(path: &Path, panel_size: (u32, u32), panels: &[LinePanel]) -> Result<()> {
    let n = panels.len().max(1);
    let root = SVGBackend::new(path, (panel_size.0 * n as u32, panel_size.1)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    for (area, panel) in root.split_evenly((1, n)).iter().zip(panels) {
        line_panel(area, panel)?;
    }
    root.present().map_err(err)?;
    Ok(())
}

/// A log axis range covering `values`, widened when they are one point.
fn log_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::MAX, f64::MIN);
    for v in values.filter(|v| *v > 0.0 && v.is_finite()) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if lo > hi {
        return (0.1, 10.0);
    }
    (lo / 2.0, hi * 2.0)
}

fn line_panel(area: &DrawingArea<SVGBackend, Shift>, p: &LinePanel) -> Result<()> {
    let xs = log_range(p.series.iter().flat_map(|s| s.1.iter().map(|pt| pt.0)));
    let ys = log_range(p.series.iter().flat_map(|s| s.1.iter().map(|pt| pt.1)));
    let mut chart = ChartBuilder::on(area)
        .caption(&p.title, ("sans-serif", 16))
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d((xs.0..xs.1).log_scale(), (ys.0..ys.1).log_scale())
        .map_err(err)?;
    chart
        .configure_mesh()
        // Log axes get a light line per minor step; their labels collide.
        .x_labels(6)
        .y_labels(6)
        .light_line_style(WHITE)
        .x_desc(p.x_desc.as_str())
        .y_desc(p.y_desc.as_str())
        .x_label_formatter(&|x| si(*x))
        .y_label_formatter(&|y| si(*y))
        .draw()
        .map_err(err)?;
    for (i, (name, pts)) in p.series.iter().enumerate() {
        let c = color(i);
        chart
            .draw_series(LineSeries::new(pts.iter().copied(), c.stroke_width(2)))
            .map_err(err)?
            .label(name.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
        chart
            .draw_series(PointSeries::of_element(
                pts.iter().copied(),
                4,
                c.filled(),
                &|pt, size, style| EmptyElement::at(pt) + Circle::new((0, 0), size, style),
            ))
            .map_err(err)?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::LowerRight)
        .draw()
        .map_err(err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_bars_and_lines_as_svg() {
        let dir = tempfile::tempdir().unwrap();
        let b = dir.path().join("b.svg");
        bars(
            &b,
            2,
            (300, 200),
            &[BarPanel {
                title: "t".into(),
                y_desc: "ops/s".into(),
                bars: vec![("A".into(), 3.0), ("B".into(), 1500.0)],
                color_by_bar: true,
            }],
        )
        .unwrap();
        let text = std::fs::read_to_string(&b).unwrap();
        assert!(text.starts_with("<svg") && text.contains("1.5K"), "{text}");
        let l = dir.path().join("l.svg");
        lines(
            &l,
            (300, 200),
            &[LinePanel {
                title: "t".into(),
                x_desc: "x".into(),
                y_desc: "y".into(),
                series: vec![("s".into(), vec![(1.0, 2.0), (10.0, 20.0)])],
            }],
        )
        .unwrap();
        assert!(std::fs::read_to_string(&l).unwrap().contains("<polyline"));
    }

    #[test]
    fn si_units() {
        assert_eq!(si(1_234_567.0), "1.23M");
        assert_eq!(si(1500.0), "1.5K");
        assert_eq!(si(0.25), "0.250");
    }
}
