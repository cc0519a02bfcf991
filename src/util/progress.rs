//! Progress of long native jobs on stderr (indicatif).

/// A progress bar of `steps` on stderr, when `show`.
pub fn progress_bar(show: bool, steps: u64) -> Option<indicatif::ProgressBar> {
    if !show {
        return None;
    }
    let b = indicatif::ProgressBar::new(steps);
    b.set_style(
        indicatif::ProgressStyle::with_template("{prefix:>14} [{bar:30}] {pos}/{len} {msg}")
            .expect("template")
            .progress_chars("=> "),
    );
    Some(b)
}
