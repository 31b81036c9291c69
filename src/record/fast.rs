//! A fast path for the one shape almost every tick has: the four fields in wire order,
//! `{"symbol":"AAPL","price":150.23,"volume":5234,"timestamp":1762080609.123}`, with or
//! without the spaces Python's `json.dumps` puts after `:` and `,`. It reads numbers as
//! serde_json does (correctly rounded) and gives up — `None` — on anything else, which then
//! takes the general decoder; so it can change speed but never an answer.

use super::{StockRecord, Symbol};

/// The record if `bytes` has the common shape; `None` means "ask the general decoder".
pub fn parse(bytes: &[u8]) -> Option<StockRecord> {
    let mut p = Cursor { bytes, at: 0 };
    if let Some(record) = p.compact() {
        return Some(record);
    }
    p.at = 0;
    p.space();
    p.eat(b'{')?;
    p.key(b"symbol")?;
    let symbol = p.symbol()?;
    p.next_key(b"price")?;
    let price = p.number()?;
    p.next_key(b"volume")?;
    let volume = p.unsigned()?;
    p.next_key(b"timestamp")?;
    let timestamp = p.number()?;
    p.space();
    p.eat(b'}')?;
    p.space();
    (p.at == bytes.len()).then_some(StockRecord {
        symbol,
        price,
        volume,
        timestamp,
    })
}

/// Powers of ten that are exact in an f64 (up to 10^22).
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    /// The spelling without white space (stockstream's own, and that of most writers): its
    /// punctuation and names compared as whole words rather than byte by byte.
    #[inline(always)]
    fn compact(&mut self) -> Option<StockRecord> {
        self.literal(br#"{"symbol":""#)?;
        let symbol = self.symbol_name()?;
        self.literal(br#"","price":"#)?;
        let price = self.number()?;
        self.literal(br#","volume":"#)?;
        let volume = self.unsigned()?;
        self.literal(br#","timestamp":"#)?;
        let timestamp = self.number()?;
        self.literal(b"}")?;
        (self.at == self.bytes.len()).then_some(StockRecord {
            symbol,
            price,
            volume,
            timestamp,
        })
    }

    /// Exactly `text`, next.
    #[inline(always)]
    fn literal<const N: usize>(&mut self, text: &[u8; N]) -> Option<()> {
        let end = self.at + N;
        let got: &[u8; N] = self.bytes.get(self.at..end)?.try_into().ok()?;
        (got == text).then(|| self.at = end)
    }

    /// The letters of a symbol, up to (not including) the closing quote.
    #[inline(always)]
    fn symbol_name(&mut self) -> Option<Symbol> {
        let start = self.at;
        while self.peek()?.is_ascii_uppercase() {
            self.at += 1;
        }
        Symbol::from_bytes(&self.bytes[start..self.at])
    }

    #[inline(always)]
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    #[inline(always)]
    fn space(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    #[inline(always)]
    fn eat(&mut self, b: u8) -> Option<()> {
        (self.peek()? == b).then(|| self.at += 1)
    }

    /// `"name"` then `:`, with optional white space around the colon.
    #[inline(always)]
    fn key<const N: usize>(&mut self, name: &[u8; N]) -> Option<()> {
        self.space();
        self.eat(b'"')?;
        let end = self.at + N;
        let got: &[u8; N] = self.bytes.get(self.at..end)?.try_into().ok()?;
        (got == name).then_some(())?;
        self.at = end;
        self.eat(b'"')?;
        self.space();
        self.eat(b':')?;
        self.space();
        Some(())
    }

    #[inline(always)]
    fn next_key<const N: usize>(&mut self, name: &[u8; N]) -> Option<()> {
        self.space();
        self.eat(b',')?;
        self.key(name)
    }

    /// A plain (escape-free) string naming a known symbol.
    #[inline(always)]
    fn symbol(&mut self) -> Option<Symbol> {
        self.eat(b'"')?;
        let symbol = self.symbol_name()?;
        self.eat(b'"')?;
        Some(symbol)
    }

    /// A JSON number, strictly by JSON's grammar (no `+`, no leading zeros, no `.5`, no
    /// `inf`), parsed with correct rounding. Overflow to infinity gives up.
    #[inline(always)]
    fn number(&mut self) -> Option<f64> {
        let start = self.at;
        let negative = self.peek() == Some(b'-');
        if negative {
            self.at += 1;
        }
        // The digits, gathered as an integer mantissa and a count of fraction digits.
        let mut mantissa = Some(0u64);
        match self.peek()? {
            b'0' => self.at += 1,
            b'1'..=b'9' => mantissa = self.accumulate(mantissa).0,
            _ => return None,
        }
        let mut fraction = 0;
        if self.peek() == Some(b'.') {
            self.at += 1;
            let (m, n) = self.accumulate(mantissa);
            (n > 0).then_some(())?;
            (mantissa, fraction) = (m, n);
        }
        let mut plain = true;
        if matches!(self.peek(), Some(b'e' | b'E')) {
            plain = false;
            self.at += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.at += 1;
            }
            self.one_or_more_digits()?;
        }
        // Clinger's fast path: an integer below 2^53 divided by an exact power of ten is one
        // correctly rounded IEEE division, the very value a full parser gives.
        if let Some(m) = mantissa.filter(|m| plain && *m < (1 << 53)) {
            if let Some(p) = POW10.get(fraction) {
                let v = m as f64 / p;
                return Some(if negative { -v } else { v });
            }
        }
        let text = std::str::from_utf8(&self.bytes[start..self.at]).ok()?;
        text.parse::<f64>().ok().filter(|v| v.is_finite())
    }

    /// Reads digits onto `mantissa` (None once it overflows); returns it and the count.
    #[inline(always)]
    fn accumulate(&mut self, mantissa: Option<u64>) -> (Option<u64>, usize) {
        let start = self.at;
        let Some(mut m) = mantissa else {
            return self.accumulate_checked(None, start);
        };
        while let Some(d) = self.peek().filter(u8::is_ascii_digit) {
            // Below 10^18, one more digit cannot overflow a u64: no checks on the usual path.
            if m >= 1_000_000_000_000_000_000 {
                return self.accumulate_checked(Some(m), start);
            }
            m = m * 10 + u64::from(d - b'0');
            self.at += 1;
        }
        (Some(m), self.at - start)
    }

    fn accumulate_checked(
        &mut self,
        mut mantissa: Option<u64>,
        start: usize,
    ) -> (Option<u64>, usize) {
        while let Some(d) = self.peek().filter(u8::is_ascii_digit) {
            mantissa = mantissa
                .and_then(|m| m.checked_mul(10))
                .and_then(|m| m.checked_add(u64::from(d - b'0')));
            self.at += 1;
        }
        (mantissa, self.at - start)
    }

    /// A JSON integer that fits a u64; anything else (sign, fraction, exponent, a leading
    /// zero) gives up.
    #[inline(always)]
    fn unsigned(&mut self) -> Option<u64> {
        let start = self.at;
        let (value, count) = self.accumulate(Some(0));
        if count == 0 || (count > 1 && self.bytes[start] == b'0') {
            return None;
        }
        if matches!(self.peek(), Some(b'.' | b'e' | b'E')) {
            return None;
        }
        value
    }

    #[inline(always)]
    fn digits(&mut self) {
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.at += 1;
        }
    }

    #[inline(always)]
    fn one_or_more_digits(&mut self) -> Option<()> {
        let start = self.at;
        self.digits();
        (self.at > start).then_some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn general(bytes: &[u8]) -> Option<StockRecord> {
        serde_json::from_slice(bytes).ok()
    }

    #[test]
    fn reads_both_spellings_of_the_common_shape() {
        let compact =
            br#"{"symbol":"AAPL","price":150.23,"volume":5234,"timestamp":1762080609.123}"#;
        let python =
            br#"{"symbol": "AAPL", "price": 150.23, "volume": 5234, "timestamp": 1762080609.123}"#;
        assert_eq!(parse(compact), general(compact));
        assert_eq!(parse(python), general(python));
        assert!(parse(compact).is_some());
    }

    #[test]
    fn gives_up_on_everything_else() {
        for other in [
            &br#"{"price":1,"symbol":"AAPL","volume":1,"timestamp":1}"#[..], // other order
            br#"{"symbol":"AAPL","price":1,"volume":1,"timestamp":1,"x":1}"#, // extra field
            br#"{"symbol":"AA\u0050L","price":1,"volume":1,"timestamp":1}"#, // escape
            br#"{"symbol":"AAPL","price":1,"volume":1.5,"timestamp":1}"#,
            br#"{"symbol":"AAPL","price":1,"volume":-1,"timestamp":1}"#,
            br#"{"symbol":"AAPL","price":01,"volume":1,"timestamp":1}"#,
            br#"{"symbol":"AAPL","price":+1,"volume":1,"timestamp":1}"#,
            br#"{"symbol":"AAPL","price":1e999,"volume":1,"timestamp":1}"#,
            br#"{"symbol":"AAPL","price":1,"volume":1,"timestamp":1} x"#,
            br#"{"symbol":"IBM","price":1,"volume":1,"timestamp":1}"#,
        ] {
            assert_eq!(parse(other), None, "{}", String::from_utf8_lossy(other));
        }
    }

    proptest! {
        /// Wherever the fast path answers, it answers what serde_json would.
        #[test]
        fn agrees_with_serde_json(
            sym in 0usize..7,
            price in prop_oneof![any::<f64>(), (0u64..100_000_000).prop_map(|c| c as f64 / 100.0)],
            volume in any::<u64>(),
            ts in prop_oneof![any::<f64>(), 1.0e9f64..2.0e9],
            spaced in any::<bool>(),
        ) {
            let sep = if spaced { " " } else { "" };
            let text = format!(
                r#"{{"symbol":{sep}"{}",{sep}"price":{sep}{price:?},{sep}"volume":{sep}{volume},{sep}"timestamp":{sep}{ts:e}}}"#,
                Symbol::ALL[sym].as_str()
            );
            let fast = parse(text.as_bytes());
            let slow = general(text.as_bytes());
            if let Some(f) = fast {
                prop_assert_eq!(Some(f), slow, "{}", text);
            }
        }

        /// Clinger's shortcut gives exactly what a full parser gives, digit for digit.
        #[test]
        fn plain_decimals_are_correctly_rounded(mantissa in 0u64..(1 << 53), fraction in 0usize..=22, negative in any::<bool>()) {
            let digits = format!("{mantissa:0>width$}", width = fraction + 1);
            let (int, frac) = digits.split_at(digits.len() - fraction);
            let text = format!("{}{int}{}{frac}", if negative { "-" } else { "" }, if fraction > 0 { "." } else { "" });
            let mut c = Cursor { bytes: text.as_bytes(), at: 0 };
            prop_assert_eq!(c.number(), text.parse::<f64>().ok(), "{}", text);
        }

        #[test]
        fn agrees_or_gives_up_on_mangled_text(s in r#"\{"symbol": ?"[A-Z]{3,5}", ?"price": ?-?[0-9]{0,4}\.?[0-9]{0,3}, ?"volume": ?[0-9.e-]{0,4}, ?"timestamp": ?[0-9.eE+-]{0,8}\} ?"#) {
            if let Some(f) = parse(s.as_bytes()) {
                prop_assert_eq!(Some(f), general(s.as_bytes()), "{}", s);
            }
        }
    }
}
