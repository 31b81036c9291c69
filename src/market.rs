//! The tick generator: each symbol follows its own geometric Brownian motion from a
//! realistic starting price, in event time, with right-skewed trade sizes (many small
//! trades, a few blocks). Pure and seeded: the same seed gives the same prices and volumes.

use std::time::{SystemTime, UNIX_EPOCH};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, LogNormal, StandardNormal};

use crate::record::{StockRecord, Symbol};

/// Starting price (USD) and annualised volatility of each symbol.
const PROFILE: [(Symbol, f64, f64); 7] = [
    (Symbol::AAPL, 190.0, 0.25),
    (Symbol::GOOGL, 170.0, 0.30),
    (Symbol::AMZN, 185.0, 0.32),
    (Symbol::MSFT, 420.0, 0.24),
    (Symbol::TSLA, 250.0, 0.60),
    (Symbol::META, 500.0, 0.38),
    (Symbol::NFLX, 650.0, 0.40),
];

/// A trading year (252 days of 6.5 hours), in seconds: the unit of the volatilities. A tick
/// moves its symbol by the event time since that symbol's previous tick, so an hour of
/// event time moves prices alike at one tick a second and at a backfill's thousands.
const TRADING_YEAR_SECONDS: f64 = 252.0 * 6.5 * 3600.0;
/// Prices never go below a cent, so every tick passes the record rules.
const MIN_PRICE: f64 = 0.01;

pub struct Market {
    rng: StdRng,
    symbols: Vec<Symbol>,
    prices: [f64; 7],
    volume: LogNormal<f64>,
    last_timestamp: f64,
    /// Each symbol's previous tick time; `None` before its first, which trades at the
    /// starting price.
    last_tick: [Option<f64>; 7],
}

impl Market {
    /// A market over `symbols` (all when empty), seeded for reproducibility when asked.
    pub fn new(symbols: &[Symbol], seed: Option<u64>) -> Self {
        let rng = seed.map_or_else(StdRng::from_entropy, StdRng::seed_from_u64);
        let mut chosen: Vec<Symbol> = if symbols.is_empty() {
            Symbol::ALL.to_vec()
        } else {
            symbols.to_vec()
        };
        chosen.sort();
        chosen.dedup();
        let mut prices = [0.0; 7];
        for (sym, start, _) in PROFILE {
            prices[sym.index()] = start;
        }
        Market {
            rng,
            symbols: chosen,
            prices,
            // Median trade of ~300 shares with a long right tail of block trades.
            volume: LogNormal::new(300f64.ln(), 1.1).expect("constant parameters are valid"),
            last_timestamp: 0.0,
            last_tick: [None; 7],
        }
    }

    pub fn symbols(&self) -> &[Symbol] {
        &self.symbols
    }

    /// The next tick, stamped `now` (Unix seconds: the wall clock, or a backfill's event
    /// time). Timestamps never decrease, even if the wall clock steps back.
    pub fn next_tick(&mut self, now: f64) -> StockRecord {
        let symbol = self.symbols[self.rng.gen_range(0..self.symbols.len())];
        let (_, _, sigma) = PROFILE[symbol.index()];
        let z: f64 = StandardNormal.sample(&mut self.rng);
        self.last_timestamp = self.last_timestamp.max(now);
        let last_tick = self.last_tick[symbol.index()].replace(self.last_timestamp);
        let dt_years = last_tick.map_or(0.0, |t| self.last_timestamp - t) / TRADING_YEAR_SECONDS;
        let drift = -0.5 * sigma * sigma * dt_years;
        let price = &mut self.prices[symbol.index()];
        *price = (*price * (drift + sigma * dt_years.sqrt() * z).exp()).max(MIN_PRICE);
        // Trade sizes: whole shares, at least one, capped to keep the tail sane.
        let volume = self.volume.sample(&mut self.rng).round().clamp(1.0, 1e6);
        StockRecord {
            symbol,
            price: (*price * 100.0).round() / 100.0,
            volume: volume as u64,
            timestamp: self.last_timestamp,
        }
    }
}

/// The wall clock in Unix seconds, the time a tick is stamped with.
pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_ticks() {
        let mut a = Market::new(&[], Some(7));
        let mut b = Market::new(&[], Some(7));
        for i in 0..1000 {
            assert_eq!(a.next_tick(f64::from(i)), b.next_tick(f64::from(i)));
        }
    }

    #[test]
    fn only_chosen_symbols_appear() {
        let mut m = Market::new(&[Symbol::TSLA, Symbol::AAPL, Symbol::TSLA], Some(1));
        assert_eq!(m.symbols(), &[Symbol::AAPL, Symbol::TSLA]);
        for _ in 0..500 {
            let t = m.next_tick(1.0);
            assert!(matches!(t.symbol, Symbol::AAPL | Symbol::TSLA));
        }
    }

    #[test]
    fn ticks_are_valid_and_prices_stay_near_their_start() {
        let mut m = Market::new(&[], Some(42));
        for i in 0..20_000 {
            let t = m.next_tick(1_762_080_000.0 + f64::from(i));
            t.validated().expect("every generated tick is valid");
            let (_, start, _) = PROFILE[t.symbol.index()];
            // A few hours of trading time moves prices by a few percent, not by multiples.
            assert!(t.price > start * 0.7 && t.price < start * 1.3, "{t:?}");
        }
    }

    /// The largest move away from the starting price, relative, over `ticks` ticks spread
    /// evenly over `seconds` of event time.
    fn largest_move(ticks: u32, seconds: f64) -> f64 {
        let mut m = Market::new(&[], Some(11));
        (0..ticks)
            .map(|i| {
                let t = m.next_tick(1_762_080_000.0 + seconds * f64::from(i) / f64::from(ticks));
                let (_, start, _) = PROFILE[t.symbol.index()];
                (t.price / start - 1.0).abs()
            })
            .fold(0.0, f64::max)
    }

    #[test]
    fn prices_move_with_event_time_not_with_the_tick_count() {
        // 50,000 ticks within a minute of event time barely move a price (a minute's
        // volatility is a few hundredths of a percent); the same ticks over a trading
        // month move it by percents.
        let minute = largest_move(50_000, 60.0);
        let month = largest_move(50_000, 21.0 * 6.5 * 3600.0);
        assert!(minute < 0.005, "{minute}");
        assert!(month > 0.02, "{month}");
    }

    #[test]
    fn a_symbols_first_tick_trades_at_its_starting_price() {
        let mut m = Market::new(&[Symbol::MSFT], Some(2));
        assert!((m.next_tick(1_000.0).price - 420.0).abs() < f64::EPSILON);
    }

    #[test]
    fn volumes_are_skewed_not_uniform() {
        let mut m = Market::new(&[], Some(3));
        let mut v: Vec<u64> = (0..10_000).map(|_| m.next_tick(1.0).volume).collect();
        v.sort_unstable();
        let median = v[v.len() / 2];
        let mean = v.iter().sum::<u64>() / v.len() as u64;
        assert!(
            mean > median,
            "a right-skewed distribution has mean {mean} > median {median}"
        );
        assert!(v[v.len() - 1] > median * 10, "the tail holds block trades");
    }

    #[test]
    fn timestamps_never_decrease() {
        let mut m = Market::new(&[], Some(5));
        let a = m.next_tick(100.0).timestamp;
        let b = m.next_tick(99.0).timestamp;
        assert!(b >= a);
    }
}
