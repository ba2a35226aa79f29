//! Medians and the figures' spelling in the report.

/// The median of `values` (the mean of the middle two for an even count); `None` when
/// empty.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    Some(if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    })
}

/// Seconds with a precision that suits their size: `0.231 s`, `5.62 s`, `112 s`.
pub fn secs(s: f64) -> String {
    if !s.is_finite() {
        "—".into()
    } else if s < 1.0 {
        format!("{s:.3} s")
    } else if s < 100.0 {
        format!("{s:.2} s")
    } else {
        format!("{s:.0} s")
    }
}

/// Milliseconds: `12.3 ms`, `240 ms`.
pub fn millis(ms: f64) -> String {
    if !ms.is_finite() {
        "—".into()
    } else if ms < 100.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.0} ms")
    }
}

/// KiB as MiB: `14.2 MiB`.
pub fn mib(kib: f64) -> String {
    if !kib.is_finite() {
        return "—".into();
    }
    format!("{:.1} MiB", kib / 1024.0)
}

/// `reference / renewd` as a factor: `24×` (how many times faster or smaller renewd is).
pub fn ratio(reference: f64, renewd: f64) -> String {
    if renewd <= 0.0 || !reference.is_finite() {
        return "—".into();
    }
    let r = reference / renewd;
    if r >= 10.0 {
        format!("{r:.0}×")
    } else {
        format!("{r:.1}×")
    }
}

/// The runs' values, for the record: `0.231, 0.240, 0.229`.
pub fn list(values: &[f64], fmt: impl Fn(f64) -> String) -> String {
    values
        .iter()
        .map(|v| fmt(*v))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[f64::NAN, 1.0]), Some(1.0));
    }

    #[test]
    fn figures_are_spelled_by_size() {
        assert_eq!(secs(0.2314), "0.231 s");
        assert_eq!(secs(5.624), "5.62 s");
        assert_eq!(secs(111.9), "112 s");
        assert_eq!(mib(14_336.0), "14.0 MiB");
        assert_eq!(ratio(5.6, 0.23), "24×");
        assert_eq!(ratio(3.0, 1.0), "3.0×");
        assert_eq!(ratio(1.0, 0.0), "—");
        assert_eq!(mib(f64::NAN), "—");
        assert_eq!(secs(f64::NAN), "—");
    }
}
