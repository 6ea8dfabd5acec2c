// svdimage explorer: rebuilds the rank-k image from embedded SVD factors, in the browser.
// Data format: src/svdimage/explorer.py's module docstring; automation hook: docs/explorer.md.
"use strict";
(function () {
  // The page's data: embedded (a built page), or a photo's, computed here (load(file)).
  let D = JSON.parse(document.getElementById("svdimage-data").textContent);
  let H, W, C, K, P, frame;
  const $ = (id) => document.getElementById(id);
  const canvas = $("image"), ctx = canvas.getContext("2d");
  const SVG = "http://www.w3.org/2000/svg";
  function shape() {  // (re)size everything that depends on the image's shape
    H = D.height; W = D.width; C = D.channels; K = D.maxRank; P = H * W;
    canvas.width = W; canvas.height = H;
    canvas.classList.toggle("tiny", Math.max(W, H) < 256);
    frame = ctx.createImageData(W, H);
    acc = Array.from({ length: C }, () => new Float32Array(P));
    built = 0; termsSinceReset = 0; ssim = null; originalSums = [];
    MW = W - WIN + 1; MH = H - WIN + 1;
  }

  function bytesOf(text) {
    const bin = atob(text), out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }


  // -- factors: U[(i*C + c)*H + row], V[(i*C + c)*W + col], sqrt(sigma)-scaled --------
  // Rice-coded integers (explorer.py's module docstring): per vector a step and a parameter.
  const ESCAPE = 24, RAW_BITS = 24;
  let U, V;
  function loadFactors() {
    if (!D.factors) return;
    const bits = bytesOf(D.factors.data);
    const us = new Float32Array(bytesOf(D.factors.uStep).buffer);
    const vs = new Float32Array(bytesOf(D.factors.vStep).buffer);
    const ku = bytesOf(D.factors.uRice), kv = bytesOf(D.factors.vRice);
    U = new Float32Array(K * C * H); V = new Float32Array(K * C * W);
    let pos = 0;
    const bit = () => (bits[pos >>> 3] >>> (7 - (pos++ & 7))) & 1;
    const read = (out, at, n, k, step) => {
      for (let e = 0; e < n; e++) {
        let q = 0;
        while (q < ESCAPE && bit()) q++;  // below ESCAPE, the failing read is the zero
        let z = q === ESCAPE ? 0 : q;
        const low = q === ESCAPE ? RAW_BITS : k;
        for (let j = 0; j < low; j++) z = z * 2 + bit();
        out[at + e] = ((z >>> 1) ^ -(z & 1)) * step;
      }
    };
    for (let i = 0; i < K; i++) {
      for (let c = 0; c < C; c++) {
        const ic = i * C + c;
        read(U, ic * H, H, ku[ic], us[ic]);
        read(V, ic * W, W, kv[ic], vs[ic]);
      }
    }
  }

  let original = null;  // Uint8ClampedArray RGBA of the display-size original
  async function loadOriginal() {
    if (!D.original) return;
    const img = new Image();
    img.src = "data:" + D.original.mime + ";base64," + D.original.data;
    await img.decode();
    const c = document.createElement("canvas");
    c.width = W; c.height = H;
    const x = c.getContext("2d");
    x.drawImage(img, 0, 0);
    original = x.getImageData(0, 0, W, H).data;
  }

  // -- the rank-k image, kept as a float sum and moved by rank-1 terms ----------------
  let acc = [];
  let built = 0;         // rank held in acc
  let target = 1;        // rank asked for
  let termsSinceReset = 0;
  function addTerm(i, sign) {  // component i (0-based)
    for (let c = 0; c < C; c++) {
      const a = acc[c], u = (i * C + c) * H, v = (i * C + c) * W;
      for (let r = 0; r < H; r++) {
        const x = sign * U[u + r];
        if (x === 0) continue;
        const o = r * W;
        for (let j = 0; j < W; j++) a[o + j] += x * V[v + j];
      }
    }
    termsSinceReset++;
  }
  function reset() { for (const a of acc) a.fill(0); built = 0; termsSinceReset = 0; }
  // Step toward `target` for at most `budgetMs`; true when done.
  function advance(budgetMs) {
    const t0 = performance.now();
    if (built !== target && (target < Math.abs(target - built) || termsSinceReset > 4 * K + 64)) reset();
    while (built !== target) {
      if (built < target) { addTerm(built, 1); built++; } else { built--; addTerm(built, -1); }
      if (performance.now() - t0 > budgetMs) break;
    }
    return built === target;
  }

  // -- the local SSIM map: metrics.ssim_map's windows and constants, on the displayed images ---
  // x: the original's channel, y: the rank-k image as drawn (clipped, 8-bit), both / 255; the
  // window sums (boxSums, addSsim: explorer_worker.js, shared with the worker) of the original
  // are kept. Map entry (i, j) is the window whose top-left pixel is (i, j).
  const WIN = SSIM_WIN;
  let MW = 0, MH = 0;
  let ssim = null;  // { rank, map: Float64Array(MH * MW), mean, ms }
  let originalSums = [];
  function originalPlane(c) {
    const x = new Float64Array(P);
    for (let p = 0; p < P; p++) x[p] = original[4 * p + (C === 1 ? 0 : c)] / 255;
    return x;
  }
  function computeSsim(rounded = true) {
    if (rounded && ssim && ssim.rank === built) return ssim;
    const t0 = performance.now();
    const map = new Float64Array(MH * MW), y = new Float64Array(P);
    for (let c = 0; c < C; c++) {
      const x = originalPlane(c);
      if (!originalSums[c]) originalSums[c] = windowSums(x, H, W);
      for (let p = 0; p < P; p++) {
        const v = Math.min(1, Math.max(0, acc[c][p]));
        y[p] = rounded ? Math.round(v * 255) / 255 : v;
      }
      addSsim(map, originalSums[c], x, y, H, W, 1 / C);
    }
    let sum = 0;
    for (let q = 0; q < map.length; q++) sum += map[q];
    const result = { rank: built, map, mean: sum / map.length, ms: performance.now() - t0 };
    if (rounded) ssim = result;
    return result;
  }

  // -- drawing ---------------------------------------------------------------------------
  let view = "reconstruction", wipeAt = 0.5, lastDrawMs = 0;
  const lut = bytesOf(D.colormap);
  function draw() {
    const t0 = performance.now();
    const out = frame.data;
    const showRecon = (p) => view === "reconstruction" || (view === "wipe" && (p % W) < wipeAt * W);
    if (view === "ssim" && original && MW > 0 && MH > 0) {
      // 1 - SSIM through the difference view's colour map: dark where the structure is kept;
      // the 3-pixel border, where no window fits, in mid grey.
      const { map } = computeSsim(), half = (WIN - 1) / 2;
      for (let p = 0; p < P; p++) {
        const r = Math.floor(p / W) - half, j = (p % W) - half, q = 4 * p;
        if (r < 0 || j < 0 || r >= MH || j >= MW) { out[q] = out[q + 1] = out[q + 2] = 128; out[q + 3] = 255; continue; }
        const idx = Math.min(255, Math.max(0, Math.round((1 - map[r * MW + j]) * 255))) * 3;
        out[q] = lut[idx]; out[q + 1] = lut[idx + 1]; out[q + 2] = lut[idx + 2]; out[q + 3] = 255;
      }
      $("colorbar-max").textContent = "≤ 0";
      $("colorbar-min").textContent = "1";
      const against = D.original.mime === "image/jpeg" ? " against the JPEG original view" : "";
      $("colorbar-hint").textContent = `local SSIM (7×7 windows) of the displayed image${against}; mean ${ssim.mean.toFixed(4)}`;
    } else if (view === "difference" && original) {
      const s = 255 / (D.diffScale * 255 * C);
      for (let p = 0; p < P; p++) {
        let d = 0;
        for (let c = 0; c < C; c++) d += Math.abs(Math.min(255, Math.max(0, acc[c][p] * 255)) - original[4 * p + (C === 1 ? 0 : c)]);
        const idx = Math.min(255, Math.round(d * s)) * 3;
        out[4 * p] = lut[idx]; out[4 * p + 1] = lut[idx + 1]; out[4 * p + 2] = lut[idx + 2]; out[4 * p + 3] = 255;
      }
    } else {
      for (let p = 0; p < P; p++) {
        const q = 4 * p;
        if (!original || showRecon(p)) {
          if (C === 1) { const g = acc[0][p] * 255; out[q] = g; out[q + 1] = g; out[q + 2] = g; }
          else { out[q] = acc[0][p] * 255; out[q + 1] = acc[1][p] * 255; out[q + 2] = acc[2][p] * 255; }
        } else {
          out[q] = original[q]; out[q + 1] = original[q + 1]; out[q + 2] = original[q + 2];
        }
        out[q + 3] = 255;
      }
    }
    ctx.putImageData(frame, 0, 0);
    if (view === "wipe" && original) {
      ctx.fillStyle = "#fff"; ctx.fillRect(Math.round(wipeAt * W) - 1, 0, Math.max(1, Math.round(W / 400)), H);
    }
    lastDrawMs = performance.now() - t0;
  }

  // -- rank changes: synchronous when cheap, otherwise in slices between frames ------------
  let waiting = [], pumping = false;
  function pump() {
    const done = advance(30);
    if (!done) { draw(); updateNumbers(built); requestAnimationFrame(pump); return; }
    pumping = false;
    draw(); updateNumbers(built);
    const w = waiting; waiting = [];
    for (const resolve of w) resolve(built);
  }
  function setRank(k) {
    k = Math.max(1, Math.min(K, Math.round(Number(k)) || 1));
    target = k;
    slider.value = k; number.value = k;
    const promise = new Promise((resolve) => waiting.push(resolve));
    if (!pumping) { pumping = true; pump(); }
    return promise;
  }

  // -- numbers -----------------------------------------------------------------------------
  function nearest(ranks, k) {
    let best = -1, bestCost = Infinity;
    ranks.forEach((r, i) => { const cost = Math.abs(r - k) + (r > k ? 0.5 : 0); if (cost < bestCost) { bestCost = cost; best = i; } });
    return best;
  }
  // A photo loaded here: PSNR and SSIM of the rank drawn, measured live as sweep measures
  // them (the clipped reconstruction against the original), once per rank.
  let live = null;
  function measured(k) {
    if (!D.live || !original || built !== k) return null;
    if (live && live.rank === k) return live;
    let sum = 0;
    for (let c = 0; c < C; c++) {
      const x = originalPlane(c), a = acc[c];
      for (let p = 0; p < P; p++) sum += (Math.min(1, Math.max(0, a[p])) - x[p]) ** 2;
    }
    const mse = sum / (P * C);
    live = {
      rank: k, psnr: mse === 0 ? Infinity : 10 * Math.log10(1 / mse),
      ssim: MW > 0 && MH > 0 ? computeSsim(false).mean : null,
    };
    return live;
  }
  function state(k) {
    k = k === undefined ? target : k;
    if (!D.relativeError) return { rank: 0, maxRank: 0, blank: true, view };
    const q = nearest(D.quality.ranks, k), s = nearest(D.storage.ranks, k), m = measured(k);
    return {
      rank: k, maxRank: K,
      relativeError: D.relativeError[k - 1], energy: D.energy[k - 1],
      psnr: m ? m.psnr : q < 0 ? null : D.quality.psnr[q], ssim: m ? m.ssim : q < 0 ? null : D.quality.ssim[q],
      psnrRank: m ? k : q < 0 ? null : D.quality.ranks[q],
      source: D.live ? "browser" : "page", exact: D.exact !== false, fileName: D.fileName || null,
      storedValues: k * D.storedValuesPerRank, float32Bytes: 4 * k * D.storedValuesPerRank,
      svdzBytes: s < 0 ? null : D.storage.svdzBytes[s], svdzRank: s < 0 ? null : D.storage.ranks[s],
      view: view, built: built, lastDrawMs: lastDrawMs,
      ssimMapMean: ssim && ssim.rank === built ? ssim.mean : null,
      ssimMapMs: ssim && ssim.rank === built ? ssim.ms : null,
    };
  }
  const fmt = (x, d) => (x === null || x === undefined) ? "–" : Number(x).toFixed(d);
  const count = (n) => Number(n).toLocaleString("en-US");
  const bpp = (b) => (8 * b / (W * H)).toFixed(3) + " bpp";  // the displayed image's pixels
  const at = (r, k) => (r === null || r === k) ? "" : ` <small>(rank ${r})</small>`;
  function row(name, value) { return `<tr><th>${name}</th><td>${value}</td></tr>`; }
  function updateNumbers(shown) {
    const s = state(target), si = nearest(D.storage.ranks, target);
    const jq = si < 0 ? null : D.storage.jpegQuality[si];
    $("numbers").tBodies[0].innerHTML =
      row("rank", `${s.rank} <small>of ${K}${shown !== target ? `, drawing ${shown}…` : ""}</small>`) +
      row("relative error ‖A−A<sub>k</sub>‖/‖A‖", fmt(s.relativeError, 4)) +
      row("energy kept", fmt(100 * s.energy, 3) + " %") +
      row("PSNR", s.psnr === null ? "–" : fmt(s.psnr, 2) + " dB" + at(s.psnrRank, s.rank)) +
      row("SSIM", s.ssim === null ? "–" : fmt(s.ssim, 4) + at(s.psnrRank, s.rank)) +
      row("stored values C·k·(M+N+1)", count(s.storedValues)) +
      row("as float32", count(s.float32Bytes) + " B, " + bpp(s.float32Bytes)) +
      row("real .svdz file", s.svdzBytes === null ? `<small>not measured${D.live ? " in the browser" : " (storage off)"}</small>` : count(s.svdzBytes) + " B, " + bpp(s.svdzBytes) + ", decodes to " + fmt(D.storage.svdzPsnr[si], 2) + " dB" + at(s.svdzRank, s.rank)) +
      row("JPEG at those bytes", si < 0 ? "<small>not measured</small>" : jq === null ? "none fits" :
        `q${jq}, ${fmt(D.storage.jpegPsnr[si], 2)} dB <small>(${count(D.storage.jpegBytes[si])} B)</small>`);
    moveCursors(target);
  }

  // -- plots (SVG) -------------------------------------------------------------------------
  const plots = [];
  function el(name, attrs, parent) {
    const e = document.createElementNS(SVG, name);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(e);
    return e;
  }
  function logTicks(lo, hi) {
    // 1, 2, 5 x 10^e when the range is short, else powers of 10; at least two ticks: a
    // range inside one step gets 1..9 x 10^e, and failing that its own two ends.
    const ticks = (steps) => {
      const out = [];
      for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++)
        for (const m of steps) out.push(m * 10 ** e);
      return out.filter((t) => t >= lo * 0.999 && t <= hi * 1.001);
    };
    for (const steps of [Math.log10(hi / lo) < 2.5 ? [1, 2, 5] : [1], [1, 2, 3, 4, 5, 6, 7, 8, 9]]) {
      const out = ticks(steps);
      if (out.length >= 2) return out;
    }
    return hi > lo ? [lo, hi] : [hi];
  }
  const tickText = (t) => (t >= 1e-3 && t < 1e4) ? String(Number(t.toPrecision(2))) : t.toExponential(1).replace(".0e", "e");
  function makePlot(svg, title, series, opts) {
    const w = 420, h = 200, m = { l: 44, r: opts.right ? 40 : 10, t: 18, b: 32 };
    svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
    svg.setAttribute("preserveAspectRatio", "none");
    const pos = series.flat().filter((v) => v > 0);
    const lo = Math.max(Math.min(...pos), Math.max(...pos) * 1e-7), hi = Math.max(...pos);
    const x = (k) => m.l + (K === 1 ? 0.5 : (k - 1) / (K - 1)) * (w - m.l - m.r);
    const y = (v) => m.t + (Math.log(hi) - Math.log(Math.max(v, lo))) / Math.max(1e-12, Math.log(hi) - Math.log(lo)) * (h - m.t - m.b);
    el("text", { x: m.l, y: 12, class: "title" }, svg).textContent = title;
    el("line", { x1: m.l, y1: h - m.b, x2: w - m.r, y2: h - m.b, class: "axis" }, svg);
    el("line", { x1: m.l, y1: m.t, x2: m.l, y2: h - m.b, class: "axis" }, svg);
    for (const t of logTicks(lo, hi)) {
      el("line", { x1: m.l - 3, y1: y(t), x2: w - m.r, y2: y(t), class: "axis", "stroke-opacity": 0.5 }, svg);
      el("text", { x: m.l - 5, y: y(t) + 3, "text-anchor": "end", class: "ytick" }, svg).textContent = tickText(t);
    }
    for (const k of new Set([1, Math.round(K / 4), Math.round(K / 2), Math.round(3 * K / 4), K])) {
      if (k < 1) continue;
      // The end ticks keep inside the axis: the first starts at it, the last ends at it.
      const anchor = K > 1 && k === 1 ? "start" : K > 1 && k === K ? "end" : "middle";
      el("text", { x: x(k), y: h - m.b + 12, "text-anchor": anchor, class: "xtick" }, svg).textContent = String(k);
    }
    // The axis title on a row of its own, under the tick labels: it can overlap none.
    el("text", { x: (m.l + w - m.r) / 2, y: h - 3, "text-anchor": "middle", class: "axis-label" }, svg).textContent = "rank k";
    const colors = C === 1 ? ["#1d2330"] : ["#d62728", "#2ca02c", "#1f77b4"];
    series.forEach((values, s) => {
      const pts = values.map((v, i) => `${x(i + 1).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
      el("polyline", { points: pts, fill: "none", stroke: opts.colors ? colors[s] : "#1d2330", "stroke-width": 1.3 }, svg);
    });
    if (opts.right) {  // cumulative energy, linear 0..1, right axis
      const yr = (v) => m.t + (1 - v) * (h - m.t - m.b);
      const pts = opts.right.map((v, i) => `${x(i + 1).toFixed(1)},${yr(v).toFixed(1)}`).join(" ");
      el("polyline", { points: pts, fill: "none", stroke: "#c2410c", "stroke-width": 1.3, "stroke-dasharray": "4 2" }, svg);
      for (const t of [0, 0.5, 1]) el("text", { x: w - m.r + 4, y: yr(t) + 3, class: "ytick-right" }, svg).textContent = `${100 * t}%`;
    }
    D.targets.forEach((t, n) => {
      if (t.rank === null || t.rank > K) return;
      el("line", { x1: x(t.rank), y1: m.t, x2: x(t.rank), y2: h - m.b, class: "mark" }, svg);
      const label = el("text", { x: x(t.rank) + 2, y: m.t + 10 + 12 * (n % 4), class: "mark-label", "data-rank": t.rank }, svg);
      label.textContent = t.label;
      // A label that would run past the plot's right edge goes to the left of its mark.
      if (x(t.rank) + 2 + label.getComputedTextLength() > w - m.r) {
        label.setAttribute("x", x(t.rank) - 2);
        label.setAttribute("text-anchor", "end");
      }
      label.addEventListener("click", (event) => { event.stopPropagation(); setRank(t.rank); });
    });
    const cursor = el("line", { y1: m.t, y2: h - m.b, class: "cursor" }, svg);
    const rankAt = (event) => {
      const box = svg.getBoundingClientRect();
      const px = (event.clientX - box.left) / box.width * w;
      return Math.max(1, Math.min(K, Math.round(1 + (px - m.l) / (w - m.l - m.r) * (K - 1))));
    };
    svg.addEventListener("click", (event) => setRank(rankAt(event)));
    plots.push({ cursor, x });
  }
  function moveCursors(k) {
    for (const p of plots) { p.cursor.setAttribute("x1", p.x(k)); p.cursor.setAttribute("x2", p.x(k)); }
  }

  // -- controls ----------------------------------------------------------------------------
  const slider = $("rank-slider"), number = $("rank-number");
  function setView(name) {
    if (!["reconstruction", "original", "difference", "wipe", "ssim"].includes(name)) throw new Error("unknown view " + name);
    if (name !== "reconstruction" && !original) return view;
    view = name;
    for (const b of document.querySelectorAll("#views button")) b.setAttribute("aria-pressed", String(b.dataset.view === name));
    $("colorbar").hidden = name !== "difference" && name !== "ssim";
    if (name === "difference") {
      $("colorbar-min").textContent = "0";
      $("colorbar-max").textContent = "≥ " + (D.diffScale * 255).toFixed(1);
      $("colorbar-hint").textContent = "mean |Aₖ − A| over channels, grey levels";
    }
    canvas.classList.toggle("wipe", name === "wipe");
    draw();
    return view;
  }
  let playing = null;
  async function play() {
    if (playing) { playing.stop = true; return; }
    const token = { stop: false }; playing = token;
    $("play").textContent = "❚❚ pause";
    for (const k of D.schedule) {
      if (token.stop) break;
      await setRank(k);
      await new Promise((r) => setTimeout(r, k <= 70 ? 60 : 120));
    }
    playing = null; $("play").textContent = "▶ play";
  }

  function setupControls() {  // once
    slider.addEventListener("input", () => setRank(slider.value));
    number.addEventListener("change", () => setRank(number.value));
    document.addEventListener("keydown", (e) => {
      if (e.target === number || e.target === slider) return;  // their own arrow keys
      if (e.key === "ArrowRight" || e.key === "ArrowLeft") {
        e.preventDefault();
        setRank(target + (e.key === "ArrowRight" ? 1 : -1) * (e.shiftKey ? 10 : 1));
      }
    });
    $("play").addEventListener("click", play);
    for (const b of document.querySelectorAll("#views button")) b.addEventListener("click", () => setView(b.dataset.view));
    const drag = (e) => {
      if (view !== "wipe" || (e.type === "pointermove" && !(e.buttons & 1))) return;
      const box = canvas.getBoundingClientRect();
      wipeAt = Math.max(0, Math.min(1, (e.clientX - box.left) / box.width));
      draw();
    };
    canvas.addEventListener("pointerdown", drag);
    canvas.addEventListener("pointermove", drag);
    const ramp = $("colorbar-ramp").getContext("2d");
    for (let i = 0; i < 256; i++) { ramp.fillStyle = `rgb(${lut[3 * i]},${lut[3 * i + 1]},${lut[3 * i + 2]})`; ramp.fillRect(i, 0, 1, 12); }
    // Your own photo: the file picker, or a drop anywhere on the page.
    $("file").addEventListener("change", () => { if ($("file").files[0]) load($("file").files[0]); });
    document.addEventListener("dragover", (e) => { e.preventDefault(); document.body.classList.add("dropping"); });
    document.addEventListener("dragleave", () => document.body.classList.remove("dropping"));
    document.addEventListener("drop", (e) => {
      e.preventDefault(); document.body.classList.remove("dropping");
      const file = e.dataTransfer && e.dataTransfer.files[0];
      if (file) load(file);
    });
  }

  function setup() {  // for each image: the ranges, texts, targets and plots
    $("prompt").hidden = !!D.relativeError;
    for (const id of ["controls", "views", "panel"]) $(id).hidden = !D.relativeError;
    if (!D.relativeError) return;
    slider.max = number.max = K;
    $("rank-of").textContent = `of ${K}`;
    const src = `${D.sourceWidth}×${D.sourceHeight}`;
    const resized = W !== D.sourceWidth || H !== D.sourceHeight;
    $("subtitle").textContent = (D.live ? `${D.fileName}: ` : "") + `${src} ${C === 1 ? "gray" : "colour"}` +
      (resized ? `, shown at ${W}×${H} (${D.live ? "resized by your browser" : "box filter"})` : "") +
      `: ${D.method} SVD of the displayed image${D.live ? ", computed in your browser" : ""}, ` +
      (K === D.fullRank ? `every rank (1–${K})` : `ranks 1–${K} of ${D.fullRank}`) +
      ". Every number is the displayed image's." +
      (D.sourceTruncated ? " The decomposition given was truncated: the page explores the image it holds." : "") +
      (D.original && D.original.mime === "image/jpeg" ? " The original view is a quality-95 JPEG of the display image (a lossless copy would not fit the file budget)." : "");
    for (const b of document.querySelectorAll("#views button")) b.disabled = b.dataset.view !== "reconstruction" && !original;
    const targets = $("targets");
    targets.textContent = "";
    for (const t of D.targets) {
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = t.rank === null ? `${t.label}: ${t.pending ? "measuring…" : `not within ranks 1–${K}`}` : `${t.label}: rank ${t.rank}`;
      b.disabled = t.rank === null;
      b.dataset.criterion = t.criterion;
      b.addEventListener("click", () => setRank(t.rank));
      targets.appendChild(b);
    }
    plots.length = 0;
    for (const id of ["error-plot", "spectrum-plot"]) $(id).textContent = "";
    makePlot($("error-plot"), "relative error ‖A−Aₖ‖F/‖A‖F (log scale, exact from σ)", [D.relativeError], {});
    makePlot($("spectrum-plot"), "singular values σᵢ (log) and cumulative energy (dashed)", D.sigma, { colors: true, right: D.energy });
  }

  // -- your own photo: decoded and resized here, its SVD in a Web Worker --------------------
  const MAX_SIDE = D.browserMaxSide || 1024;
  let worker = null, loading = null;
  function say(text) { $("message").textContent = text; }
  async function load(file) {
    if (!(file instanceof Blob)) throw new Error("load(file) takes a File or a Blob");
    say("");
    let bitmap;
    try { bitmap = await createImageBitmap(file); } catch (error) {
      say(`${file.name || "That file"} is not an image this browser can read; drop a PNG, JPEG, WebP or GIF.`);
      return false;
    }
    const scale = Math.min(1, MAX_SIDE / Math.max(bitmap.width, bitmap.height));
    const w = Math.max(1, Math.round(bitmap.width * scale)), h = Math.max(1, Math.round(bitmap.height * scale));
    const work = document.createElement("canvas");
    work.width = w; work.height = h;
    const x = work.getContext("2d");
    x.imageSmoothingQuality = "high";
    x.drawImage(bitmap, 0, 0, w, h);
    const rgba = x.getImageData(0, 0, w, h).data;
    let gray = true;
    for (let p = 0; p < w * h && gray; p++) gray = rgba[4 * p] === rgba[4 * p + 1] && rgba[4 * p] === rgba[4 * p + 2];
    const channels = gray ? 1 : 3;
    const planes = Array.from({ length: channels }, (_, c) => {
      const plane = new Float64Array(w * h);
      for (let p = 0; p < w * h; p++) plane[p] = rgba[4 * p + c] / 255;
      return plane;
    });
    if (worker) worker.terminate();
    try {
      worker = new Worker(URL.createObjectURL(new Blob([$("svdimage-worker").textContent], { type: "text/javascript" })));
    } catch (error) {  // a sandboxed frame (Jupyter's inline page) may not start workers
      say("This view cannot compute an SVD here (a sandboxed frame); save the page and open the file instead.");
      return false;
    }
    const base = {
      version: D.version, title: file.name, live: true, fileName: file.name || "your photo",
      width: w, height: h, channels, sourceWidth: bitmap.width, sourceHeight: bitmap.height,
      fullRank: Math.min(w, h), storedValuesPerRank: channels * (w + h + 1), colormap: D.colormap,
      quality: { ranks: [], psnr: [], ssim: [] }, storage: { ranks: [], svdzBytes: [], svdzPsnr: [], jpegQuality: [], jpegBytes: [], jpegPsnr: [] },
      original: null, factors: null,
    };
    let resolveLoad;
    loading = new Promise((resolve) => { resolveLoad = resolve; });
    let first = true;
    const pixels = rgba;
    worker.onmessage = (event) => {
      const m = event.data;
      if (m.type === "progress") {
        $("status").textContent = `Computing the SVD of ${w}×${h} in your browser: ${m.stage}, ${m.done} of ${m.total}…`;
      } else if (m.type === "factors") {
        const keep = first ? 1 : target;
        D = Object.assign({}, base, fromFactors(m, channels), { method: m.exact ? "exact" : "randomized", exact: m.exact });
        U = m.U; V = m.V;
        shape();
        original = pixels;
        live = null;
        setup();
        if (first) setView("reconstruction");
        first = false;
        setRank(Math.min(keep, K));
        if (m.exact) resolveLoad(true);
        $("status").textContent = m.exact
          ? "Every rank, from the exact SVD computed in your browser; measuring the PSNR and SSIM marks…"
          : `A first view from a randomized SVD (ranks 1–${m.k}); the exact SVD is on its way…`;
      } else if (m.type === "marks") {
        for (const t of D.targets) if (t.measure in m.marks) { t.rank = m.marks[t.measure]; t.pending = false; }
        D.diffScale = m.diffScale;
        setup(); updateNumbers(built);
        $("status").textContent = "Every rank, from the exact SVD computed in your browser; this page makes no network request. Made with svdimage.";
      } else if (m.type === "error") {
        say(`Could not compute the SVD of this photo: ${m.message}`);
        resolveLoad(false);
      }
    };
    worker.onerror = (event) => {
      event.preventDefault();
      say("Could not start the SVD here (a sandboxed frame blocks workers?); save the page and open the file instead.");
      resolveLoad(false);
    };
    worker.postMessage({ planes, width: w, height: h, targets: { psnr: 35, ssim: 0.95 } });
    return loading;
  }
  function fromFactors(m, channels) {  // errors, energy, targets: exact from σ, as Python's
    const k = m.k, squares = [];
    let total = 0;
    for (let i = 0; i < k; i++) { let s2 = 0; for (let c = 0; c < channels; c++) s2 += m.sigma[c][i] ** 2; squares.push(s2); total += s2; }
    // A randomized first view holds the top ranks only: ‖A‖² is the image's, not Σσ².
    const norm2 = m.exact ? total : m.norm2;
    const energy = [], relativeError = [];
    let kept = 0;
    for (let i = 0; i < k; i++) { kept += squares[i]; energy.push(kept / norm2); relativeError.push(Math.sqrt(Math.max(0, 1 - kept / norm2))); }
    let knee = null;
    if (m.exact && k >= 3 && relativeError[0] > relativeError[k - 1]) {
      const end = relativeError[k - 1];
      let best = -Infinity;
      for (let i = 0; i < k; i++) {
        const score = (1 - i / (k - 1)) - (relativeError[i] - end) / (relativeError[0] - end);
        if (score > best) { best = score; knee = i + 1; }
      }
    } else if (m.exact) knee = 1;
    const energy99 = energy.findIndex((e) => e >= 0.99);
    return {
      maxRank: k, sigma: m.sigma.map((row) => row.slice(0, k)), relativeError, energy,
      schedule: schedule(k), diffScale: D.diffScale || 0.1,
      targets: [
        { label: "knee", criterion: "knee", rank: knee, pending: !m.exact },
        { label: "energy 99%", criterion: "energy=0.99", rank: m.exact && energy99 >= 0 ? energy99 + 1 : null, pending: !m.exact },
        { label: "PSNR 35 dB", criterion: "psnr=35", measure: "psnr", rank: null, pending: true },
        { label: "SSIM 0.95", criterion: "ssim=0.95", measure: "ssim", rank: null, pending: true },
      ],
    };
  }
  function schedule(k) {  // ranks 1..70, then every 10th, then k: the animation's
    const out = [];
    for (let r = 1; r <= Math.min(70, k); r++) out.push(r);
    for (let r = 80; r < k; r += 10) out.push(r);
    if (out[out.length - 1] !== k) out.push(k);
    return out;
  }

  const ready = (async () => {
    setupControls();
    if (!D.factors) {  // a blank page (svdimage explore --blank): waits for a photo
      setup();
      $("status").textContent = "Drop a photo on this page or choose one: its SVD is computed in your browser; this page makes no network request.";
      return true;
    }
    shape();
    await Promise.all([loadFactors(), loadOriginal()]);
    setup();
    await setRank(1);
    $("status").textContent = "Drawn in your browser from the embedded SVD factors; this page makes no network request. Made with svdimage.";
    return true;
  })();
  ready.catch((e) => { $("status").textContent = "Could not start: " + e; console.error(e); });

  window.svdimage = {
    ready,
    setRank,
    state: () => state(),
    view: (name) => (name === undefined ? view : setView(name)),
    play,
    load,
    wipe: (fraction) => { wipeAt = Math.max(0, Math.min(1, fraction)); draw(); },
    ssimMap: () => {  // the local SSIM map of the rank drawn now (docs/explorer.md)
      if (!original || MW < 1 || MH < 1) return null;
      const m = computeSsim();
      return { rank: m.rank, width: MW, height: MH, mean: m.mean, ms: m.ms, values: Array.from(m.map) };
    },
  };
})();
