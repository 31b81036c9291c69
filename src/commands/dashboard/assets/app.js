// stockstream dashboard: keeps the board the server streams (/events: a snapshot, then each
// bar, the last ticks and the health as they change) and draws it: one candlestick chart per
// symbol on a <canvas>, by hand, with volume and the VWAP line. Nothing is fetched from
// anywhere but the server that served the page.
"use strict";

(() => {
  const SYMBOLS = ["AAPL", "GOOGL", "AMZN", "MSFT", "TSLA", "META", "NFLX"];
  // As many candles per symbol as the server keeps.
  const HISTORY = 300;
  const COLORS = {
    up: "#26a69a",
    down: "#ef5350",
    vwap: "#f0a030",
    grid: "#2a3340",
    text: "#8a94a6",
    last: "#d8dee9",
  };

  const view = {
    about: null,
    candles: Object.fromEntries(SYMBOLS.map((s) => [s, new Map()])),
    ticks: {},
    health: null,
    // Whether the stream to the server is open (and its first snapshot in).
    connected: false,
    everConnected: false,
    selected: "ALL",
    bars: 0,
  };

  // What the page holds, as plain data, for whoever checks it (the tests, a console).
  window.stockstream = {
    view,
    candles: (symbol) => sorted(symbol),
    counts: () => Object.fromEntries(SYMBOLS.map((s) => [s, view.candles[s].size])),
  };

  const $ = (selector) => document.querySelector(selector);
  const charts = {};

  function sorted(symbol) {
    return [...view.candles[symbol].values()].sort((a, b) => a.start - b.start);
  }

  // A bar in the wire format of the bars topic. A revised bar replaces the candle of its
  // window; a non-final one after the final is an old one.
  function applyBar(bar) {
    const kept = view.candles[bar.symbol];
    bar.start = Date.parse(bar.window_start);
    if (!kept) return;
    const old = kept.get(bar.start);
    if (old && old.final && !bar.final) return;
    kept.set(bar.start, bar);
    if (kept.size > HISTORY) {
      const oldest = Math.min(...kept.keys());
      kept.delete(oldest);
    }
  }

  function build() {
    const nav = $("#symbols");
    for (const name of ["ALL", ...SYMBOLS]) {
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = name === "ALL" ? "All" : name;
      b.dataset.symbol = name;
      b.addEventListener("click", () => select(name));
      nav.appendChild(b);
    }
    const box = $("#charts");
    for (const symbol of SYMBOLS) {
      const root = document.createElement("div");
      root.className = "chart";
      root.dataset.symbol = symbol;
      root.dataset.candles = "0";
      root.innerHTML =
        '<div class="title"><b></b><span class="price"></span><span class="meta"></span></div><canvas></canvas>';
      root.querySelector("b").textContent = symbol;
      root.addEventListener("click", () => select(view.selected === symbol ? "ALL" : symbol));
      box.appendChild(root);
      charts[symbol] = {
        root,
        canvas: root.querySelector("canvas"),
        price: root.querySelector(".price"),
        meta: root.querySelector(".meta"),
      };
    }
    select("ALL");
  }

  function select(name) {
    view.selected = name;
    for (const b of document.querySelectorAll("#symbols button")) {
      b.setAttribute("aria-pressed", String(b.dataset.symbol === name));
    }
    $("#charts").classList.toggle("single", name !== "ALL");
    for (const symbol of SYMBOLS) {
      charts[symbol].root.hidden = name !== "ALL" && name !== symbol;
    }
    schedule();
  }

  let pending = false;
  function schedule() {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      render();
    });
  }

  function render() {
    renderBanner();
    for (const symbol of SYMBOLS) {
      if (!charts[symbol].root.hidden) drawChart(symbol);
      else charts[symbol].root.dataset.candles = String(view.candles[symbol].size);
    }
    renderHealth();
    renderTicks();
  }

  function totalCandles() {
    return SYMBOLS.reduce((n, s) => n + view.candles[s].size, 0);
  }

  // What is wrong, if anything, in one sentence: never a blank page.
  function problem() {
    if (!view.connected) {
      return view.everConnected
        ? { bad: true, text: "Lost the connection to the dashboard server; trying again…" }
        : { bad: false, text: "Connecting to the dashboard server…" };
    }
    const feed = view.health && view.health.bars;
    if (feed && feed.state === "unreachable") return { bad: true, text: feed.message };
    if (feed && feed.state === "missing") return { bad: false, text: "No bars: " + feed.message };
    if (feed && feed.state === "starting") return { bad: false, text: "Connecting to Kafka…" };
    if (totalCandles() === 0 && view.about) {
      return {
        bad: false,
        text: `No bars yet in \`${view.about.topic}\`: start \`stockstream produce\` and \`stockstream aggregate\`.`,
      };
    }
    return null;
  }

  function renderBanner() {
    const banner = $("#banner");
    const p = problem();
    banner.hidden = !p;
    if (p) {
      banner.textContent = p.text;
      banner.classList.toggle("bad", p.bad);
    }
    if (view.about) {
      $("#source").textContent = `${view.about.topic} on ${view.about.brokers}`;
    }
  }

  function fmt(n, digits) {
    return n.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
  }

  function clock(ms) {
    return new Date(ms).toISOString().slice(11, 19);
  }

  function drawChart(symbol) {
    const c = charts[symbol];
    const all = sorted(symbol);
    c.root.dataset.candles = String(all.length);
    const last = all[all.length - 1];
    const tick = view.ticks[symbol];
    const price = tick ? tick.price : last ? last.close : null;
    c.price.textContent = price === null ? "" : fmt(price, 2);
    c.price.className = "price " + (last && last.close < last.open ? "down" : "up");
    c.meta.textContent = last
      ? `${all.length} bars · last ${clock(last.start)} UTC${last.vwap != null ? " · VWAP " + fmt(last.vwap, 2) : ""}`
      : "";

    const canvas = c.canvas;
    const dpr = window.devicePixelRatio || 1;
    const w = canvas.clientWidth;
    const h = canvas.clientHeight;
    if (w === 0 || h === 0) return;
    if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
      canvas.width = Math.round(w * dpr);
      canvas.height = Math.round(h * dpr);
    }
    const ctx = canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);
    ctx.font = "11px system-ui, sans-serif";

    if (all.length === 0) {
      const p = problem();
      ctx.fillStyle = COLORS.text;
      ctx.textAlign = "center";
      ctx.fillText(p ? "Waiting for bars" : `No bars for ${symbol} yet`, w / 2, h / 2);
      return;
    }

    const axis = 58;
    const timeAxis = 16;
    const plotW = w - axis;
    const slot = Math.max(3, Math.min(14, plotW / all.length));
    const shown = all.slice(-Math.max(1, Math.floor(plotW / slot)));
    const priceH = (h - timeAxis) * 0.78;
    const volTop = priceH + 4;
    const volH = h - timeAxis - volTop;

    let lo = Infinity;
    let hi = -Infinity;
    let maxVol = 0;
    for (const b of shown) {
      lo = Math.min(lo, b.low, b.vwap ?? b.low);
      hi = Math.max(hi, b.high, b.vwap ?? b.high);
      maxVol = Math.max(maxVol, b.volume);
    }
    if (hi - lo < 1e-9) {
      hi += 0.5;
      lo -= 0.5;
    }
    const pad = (hi - lo) * 0.05;
    lo -= pad;
    hi += pad;
    const y = (p) => 4 + (hi - p) / (hi - lo) * (priceH - 8);
    const x = (i) => i * slot + slot / 2;

    // Grid and price labels.
    ctx.strokeStyle = COLORS.grid;
    ctx.lineWidth = 1;
    ctx.fillStyle = COLORS.text;
    ctx.textAlign = "left";
    ctx.textBaseline = "middle";
    const lastY = y(last.close);
    for (let k = 0; k <= 4; k++) {
      const p = lo + (hi - lo) * (k / 4);
      const yy = Math.round(y(p)) + 0.5;
      ctx.beginPath();
      ctx.moveTo(0, yy);
      ctx.lineTo(plotW, yy);
      ctx.stroke();
      // The last close is marked on the axis below: no label under it.
      if (Math.abs(yy - lastY) > 12) ctx.fillText(fmt(p, 2), plotW + 4, yy);
    }

    // Volume.
    for (let i = 0; i < shown.length; i++) {
      const b = shown[i];
      const vh = maxVol > 0 ? (b.volume / maxVol) * volH : 0;
      ctx.fillStyle = b.close >= b.open ? COLORS.up : COLORS.down;
      ctx.globalAlpha = 0.35;
      ctx.fillRect(x(i) - slot * 0.35, volTop + volH - vh, Math.max(1, slot * 0.7), vh);
    }
    ctx.globalAlpha = 1;

    // Candles: a window still open (not final) is drawn hollow.
    for (let i = 0; i < shown.length; i++) {
      const b = shown[i];
      const color = b.close >= b.open ? COLORS.up : COLORS.down;
      const cx = Math.round(x(i)) + 0.5;
      ctx.strokeStyle = color;
      ctx.fillStyle = color;
      ctx.beginPath();
      ctx.moveTo(cx, y(b.high));
      ctx.lineTo(cx, y(b.low));
      ctx.stroke();
      const top = y(Math.max(b.open, b.close));
      const bodyH = Math.max(1, Math.abs(y(b.open) - y(b.close)));
      const bodyW = Math.max(1, slot * 0.7);
      if (b.final) ctx.fillRect(cx - bodyW / 2, top, bodyW, bodyH);
      else ctx.strokeRect(cx - bodyW / 2, top, bodyW, bodyH);
    }

    // VWAP line.
    ctx.strokeStyle = COLORS.vwap;
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    let started = false;
    for (let i = 0; i < shown.length; i++) {
      const v = shown[i].vwap;
      if (v == null) continue;
      if (started) ctx.lineTo(x(i), y(v));
      else ctx.moveTo(x(i), y(v));
      started = true;
    }
    ctx.stroke();
    ctx.lineWidth = 1;

    // The last close, marked on the axis.
    ctx.fillStyle = last.close >= last.open ? COLORS.up : COLORS.down;
    ctx.fillRect(plotW + 1, lastY - 7, axis - 1, 14);
    ctx.fillStyle = "#11151c";
    ctx.fillText(fmt(last.close, 2), plotW + 4, lastY);

    // Times of the first and last window shown.
    ctx.fillStyle = COLORS.text;
    ctx.textBaseline = "bottom";
    ctx.textAlign = "left";
    ctx.fillText(clock(shown[0].start), 0, h);
    ctx.textAlign = "right";
    ctx.fillText(clock(last.start) + " UTC", plotW, h);
  }

  function renderHealth() {
    const h = view.health;
    if (!h) return;
    $("#ticks-per-second").textContent = h.ticks_per_second == null ? "—" : fmt(h.ticks_per_second, 1);
    $("#ticks-total").textContent = h.ticks_total == null ? "—" : fmt(h.ticks_total, 0);
    $("#lag").textContent = h.lag == null ? "—" : fmt(h.lag, 0);
    const reasons = Object.entries(h.dead_letters);
    const total = reasons.reduce((n, [, count]) => n + count, 0);
    $("#dead-total").textContent = fmt(total, 0);
    $("#dead-total").dataset.count = String(total);
    const body = $("#dead-letters tbody");
    body.replaceChildren(
      ...reasons.map(([reason, count]) => {
        const tr = document.createElement("tr");
        tr.dataset.reason = reason;
        tr.dataset.count = String(count);
        const name = document.createElement("td");
        name.textContent = reason;
        const n = document.createElement("td");
        n.textContent = fmt(count, 0);
        tr.append(name, n);
        return tr;
      }),
    );
    const feeds = [
      ["Bars", h.bars],
      ["Ticks", h.input],
      ["Lag", h.group],
      ["Dead letters", h.dead_letter_feed],
    ];
    $("#feeds").replaceChildren(
      ...feeds.map(([name, feed]) => {
        const li = document.createElement("li");
        li.className = feed.state;
        li.dataset.feed = name;
        li.textContent = `${name}: ${feed.message}`;
        return li;
      }),
    );
  }

  function renderTicks() {
    const rows = SYMBOLS.filter((s) => view.ticks[s]).map((s) => {
      const t = view.ticks[s];
      const tr = document.createElement("tr");
      tr.dataset.symbol = s;
      tr.dataset.price = String(t.price);
      const when = new Date(t.timestamp * 1000).toISOString();
      for (const text of [s, fmt(t.price, 2), fmt(t.volume, 0), when.slice(11, 23)]) {
        const td = document.createElement("td");
        td.textContent = text;
        tr.appendChild(td);
      }
      tr.title = when;
      return tr;
    });
    $("#ticks tbody").replaceChildren(...rows);
    $("#no-ticks").hidden = rows.length > 0;
  }

  function takeTicks(list) {
    for (const t of list) view.ticks[t.symbol] = t;
  }

  function connect() {
    const events = new EventSource("/events");
    events.addEventListener("snapshot", (e) => {
      const s = JSON.parse(e.data);
      view.about = s.about;
      for (const symbol of SYMBOLS) {
        view.candles[symbol] = new Map();
        for (const bar of s.candles[symbol] || []) applyBar(bar);
      }
      view.ticks = {};
      takeTicks(s.ticks);
      view.health = s.health;
      view.connected = true;
      view.everConnected = true;
      schedule();
    });
    events.addEventListener("bar", (e) => {
      applyBar(JSON.parse(e.data));
      view.bars += 1;
      schedule();
    });
    events.addEventListener("ticks", (e) => {
      takeTicks(JSON.parse(e.data));
      schedule();
    });
    events.addEventListener("health", (e) => {
      view.health = JSON.parse(e.data);
      schedule();
    });
    // The browser reconnects by itself; the server then sends a fresh snapshot.
    events.addEventListener("error", () => {
      view.connected = false;
      schedule();
    });
  }

  build();
  window.addEventListener("resize", schedule);
  render();
  connect();
})();
