//! The error budget of a run (`--max-failures N` or `P%`): once more rows than that have failed in this run, the job
//! stops taking rows. Pure: counts in, a verdict out.

use std::fmt;
use std::str::FromStr;

/// A percentage counts only after this many rows of the run have finished: two failures in the first three rows
/// are not yet a trend.
pub const PERCENT_MINIMUM_ROWS: u64 = 20;

/// How many failed rows a run may have.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum MaxFailures {
    Count(u64),
    /// A percentage of the rows finished in this run, from 0 to 100.
    Percent(f64),
}

impl FromStr for MaxFailures {
    type Err = String;

    fn from_str(text: &str) -> Result<MaxFailures, String> {
        let text = text.trim();
        let wrong = || format!("value \"{text}\": give a number of rows like 25, or a percentage like 5%");
        match text.strip_suffix('%') {
            Some(number) => {
                let percent: f64 = number.trim().parse().map_err(|_| wrong())?;
                if !(0.0..=100.0).contains(&percent) {
                    return Err(format!("value \"{text}\": a percentage is between 0% and 100%"));
                }
                Ok(MaxFailures::Percent(percent))
            }
            None => text.parse().map(MaxFailures::Count).map_err(|_| wrong()),
        }
    }
}

impl fmt::Display for MaxFailures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MaxFailures::Count(count) => write!(f, "{count} failed rows"),
            MaxFailures::Percent(percent) => write!(f, "{percent}% of the rows failed"),
        }
    }
}

impl MaxFailures {
    /// Whether a run with these counts has spent its budget: more rows failed than allowed.
    pub fn exceeded(&self, finished: u64, failed: u64) -> bool {
        match *self {
            MaxFailures::Count(count) => failed > count,
            MaxFailures::Percent(percent) => {
                finished >= PERCENT_MINIMUM_ROWS && (failed as f64) * 100.0 > percent * finished as f64
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_percentages_are_read() {
        assert_eq!("25".parse::<MaxFailures>(), Ok(MaxFailures::Count(25)));
        assert_eq!(" 5% ".parse::<MaxFailures>(), Ok(MaxFailures::Percent(5.0)));
        assert_eq!("0.5%".parse::<MaxFailures>(), Ok(MaxFailures::Percent(0.5)));
        for bad in ["", "x", "-1", "5 %%", "101%", "-3%"] {
            assert!(bad.parse::<MaxFailures>().is_err(), "{bad}");
        }
    }

    #[test]
    fn more_than_the_count_spends_the_budget() {
        let budget = MaxFailures::Count(3);
        assert!(!budget.exceeded(10, 3));
        assert!(budget.exceeded(10, 4));
        assert!(MaxFailures::Count(0).exceeded(1, 1));
    }

    #[test]
    fn a_percentage_counts_after_the_minimum_rows() {
        let budget = MaxFailures::Percent(10.0);
        assert!(!budget.exceeded(5, 5), "too early to tell");
        assert!(!budget.exceeded(20, 2));
        assert!(budget.exceeded(20, 3));
        assert!(budget.exceeded(1000, 101));
    }
}
