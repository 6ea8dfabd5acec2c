// svdimage explorer: the SVD of a photo dropped on the page, in a Web Worker (no request).
// In: {planes: [Float64Array(H*W)] (values in [0, 1]), width, height}. Out, in order:
// {type: "progress", stage, done, total}; {type: "factors", exact: false, ...} from a randomized
// SVD (Halko, Martinsson & Tropp, 2011: 2 power iterations); {type: "factors", exact: true, ...}
// from the eigendecomposition of the Gram matrix AᵀA (Householder tridiagonalization and
// implicit QL: EISPACK's tred2/tql2), with V its eigenvectors, σ = √λ and the left factor
// A v = σu, so the rank-k image A V_k V_kᵀ never divides by a small σ; then {type: "marks"}.
// Factors: U[(i*C + c)*H + row] = √σ u, V[(i*C + c)*W + col] = √σ v, as the built page holds.
// The page also runs this file as a plain script, for the functions both sides share (the
// SSIM of 7x7 windows): only inside a worker does it listen for messages.
"use strict";
if (typeof WorkerGlobalScope !== "undefined" && self instanceof WorkerGlobalScope) {
  self.onmessage = (event) => {
    try { run(event.data); } catch (error) { self.postMessage({ type: "error", message: String(error && error.message || error) }); }
  };
}

// -- SSIM of every 7x7 window inside the image: metrics.ssim_map's windows and constants -----
const SSIM_WIN = 7, SSIM_C1 = 0.01 * 0.01, SSIM_C2 = 0.03 * 0.03;
function boxSums(values, H, W) {  // (H x W) -> ((H-6) x (W-6)) sums of each window
  const MW = W - SSIM_WIN + 1, MH = H - SSIM_WIN + 1;
  const rows = new Float64Array(H * MW), out = new Float64Array(MH * MW);
  for (let r = 0; r < H; r++) {
    const o = r * W; let s = 0;
    for (let j = 0; j < SSIM_WIN; j++) s += values[o + j];
    rows[r * MW] = s;
    for (let j = 1; j < MW; j++) { s += values[o + j + SSIM_WIN - 1] - values[o + j - 1]; rows[r * MW + j] = s; }
  }
  for (let j = 0; j < MW; j++) {
    let s = 0;
    for (let r = 0; r < SSIM_WIN; r++) s += rows[r * MW + j];
    out[j] = s;
    for (let r = 1; r < MH; r++) { s += rows[(r + SSIM_WIN - 1) * MW + j] - rows[(r - 1) * MW + j]; out[r * MW + j] = s; }
  }
  return out;
}
// Adds weight x the local SSIM of (x, y) to map; sums = [Σx, Σx²] of x's windows, kept.
function addSsim(map, sums, x, y, H, W, weight) {
  const NP = SSIM_WIN * SSIM_WIN, NORM = NP / (NP - 1), P = H * W;
  const prod = new Float64Array(P);
  const [sx, sxx] = sums;
  const sy = boxSums(y, H, W);
  for (let p = 0; p < P; p++) prod[p] = y[p] * y[p];
  const syy = boxSums(prod, H, W);
  for (let p = 0; p < P; p++) prod[p] = x[p] * y[p];
  const sxy = boxSums(prod, H, W);
  for (let q = 0; q < map.length; q++) {
    const ux = sx[q] / NP, uy = sy[q] / NP;
    const vx = NORM * (sxx[q] / NP - ux * ux), vy = NORM * (syy[q] / NP - uy * uy);
    const vxy = NORM * (sxy[q] / NP - ux * uy);
    map[q] += weight * ((2 * ux * uy + SSIM_C1) * (2 * vxy + SSIM_C2)) / ((ux * ux + uy * uy + SSIM_C1) * (vx + vy + SSIM_C2));
  }
}
function windowSums(x, H, W) {
  const sq = new Float64Array(x.length);
  for (let p = 0; p < x.length; p++) sq[p] = x[p] * x[p];
  return [boxSums(x, H, W), boxSums(sq, H, W)];
}

function run({ planes, width: W, height: H, targets }) {
  const C = planes.length, K = Math.min(H, W);
  const progress = (stage, done, total) => self.postMessage({ type: "progress", stage, done, total });
  // Work on the short side: A is R x S with S = min(H, W), row-major (the image, or its
  // transpose when it is wide); tall = (H >= W) keeps rows as rows.
  const tall = H >= W, R = tall ? H : W, S = K;
  const matrices = planes.map((plane) => {
    if (tall) return plane;
    const A = new Float64Array(R * S);
    for (let s = 0; s < S; s++) for (let r = 0; r < R; r++) A[r * S + s] = plane[s * W + r];
    return A;
  });
  const quick = Math.min(S, 48);
  let norm2 = 0;  // ‖A‖², over the channels
  for (const plane of planes) for (let p = 0; p < plane.length; p++) norm2 += plane[p] * plane[p];
  const sendFactors = (exact, results) => {
    const k = results[0].k;
    const U = new Float32Array(k * C * H), V = new Float32Array(k * C * W), sigma = [];
    results.forEach((res, c) => {
      sigma.push(Array.from(res.sigma));
      for (let i = 0; i < k; i++) {
        const root = Math.sqrt(Math.max(res.sigma[i], 0)), scale = root > 0 ? 1 / root : 0;
        const ic = i * C + c;
        // res.left[i] is A v_i = σ u_i (length R), res.right[i] is v_i (length S).
        const left = res.left[i], right = res.right[i];
        if (tall) {
          for (let r = 0; r < H; r++) U[ic * H + r] = left[r] * scale;
          for (let s = 0; s < W; s++) V[ic * W + s] = right[s] * root;
        } else {
          for (let s = 0; s < H; s++) U[ic * H + s] = right[s] * root;
          for (let r = 0; r < W; r++) V[ic * W + r] = left[r] * scale;
        }
      }
    });
    self.postMessage({ type: "factors", exact, k, sigma, U, V, norm2 });  // copied: kept for the marks
    return { U, V };
  };

  // -- randomized first view ------------------------------------------------------------------
  const rough = matrices.map((A, c) => {
    progress("randomized SVD", c, C);
    return randomized(A, quick);
  });
  sendFactors(false, rough);

  // -- exact: eigendecomposition of AᵀA ------------------------------------------------------
  const exact = matrices.map((A, c) => {
    progress("exact SVD", c, C);
    const G = new Float64Array(S * S);
    for (let r = 0; r < R; r++) {
      const row = A.subarray(r * S, (r + 1) * S);
      for (let a = 0; a < S; a++) {
        const x = row[a];
        if (x === 0) continue;
        const o = a * S;
        for (let b = a; b < S; b++) G[o + b] += x * row[b];
      }
    }
    for (let a = 0; a < S; a++) for (let b = a + 1; b < S; b++) G[b * S + a] = G[a * S + b];
    const { values, vectors } = symmetricEigen(G, S);  // ascending
    const sigma = new Float64Array(S), right = [], left = [];
    for (let i = 0; i < S; i++) {
      const j = S - 1 - i;
      sigma[i] = Math.sqrt(Math.max(values[j], 0));
      const v = new Float64Array(S);
      for (let s = 0; s < S; s++) v[s] = vectors[s * S + j];
      right.push(v);
    }
    signs(right);
    for (let i = 0; i < S; i++) left.push(times(A, right[i]));
    // σ from |A v| (more accurate for small σ than √λ of the Gram matrix).
    for (let i = 0; i < S; i++) sigma[i] = norm(left[i]);
    return { k: S, sigma, left, right };
  });
  progress("exact SVD", C, C);
  const factors = sendFactors(true, exact);

  // -- the PSNR and SSIM marks: the smallest rank that reaches each target ---------------------
  // The clipped rank-k image, as sweep measures it; ranks doubled until the target is met,
  // then bisected (each try rebuilt from the last rank below it).
  const P = H * W, sums = planes.map((x) => (H >= SSIM_WIN && W >= SSIM_WIN ? windowSums(x, H, W) : null));
  const image = (k) => planes.map((_, c) => {
    const out = new Float64Array(P);
    for (let i = 0; i < k; i++) {
      const u = (i * C + c) * H, v = (i * C + c) * W;
      for (let r = 0; r < H; r++) {
        const x = factors.U[u + r];
        if (x === 0) continue;
        for (let j = 0; j < W; j++) out[r * W + j] += x * factors.V[v + j];
      }
    }
    for (let p = 0; p < P; p++) out[p] = Math.min(1, Math.max(0, out[p]));
    return out;
  });
  const metric = {
    psnr: (rec) => {
      let sum = 0;
      rec.forEach((y, c) => { const x = planes[c]; for (let p = 0; p < P; p++) sum += (y[p] - x[p]) ** 2; });
      const mse = sum / (P * C);
      return mse === 0 ? Infinity : 10 * Math.log10(1 / mse);
    },
    ssim: (rec) => {
      if (!sums[0]) return NaN;
      const map = new Float64Array((H - SSIM_WIN + 1) * (W - SSIM_WIN + 1));
      rec.forEach((y, c) => addSsim(map, sums[c], planes[c], y, H, W, 1 / C));
      let sum = 0; for (let q = 0; q < map.length; q++) sum += map[q];
      return sum / map.length;
    },
  };
  const marks = {};
  for (const [name, target] of Object.entries(targets || {})) {
    progress(`the rank for ${name}`, 0, 1);
    const reaches = (k) => metric[name](image(k)) >= target;
    let hi = 1;
    while (hi < K && !reaches(hi)) hi = Math.min(K, 2 * hi);
    if (!reaches(hi)) { marks[name] = null; continue; }
    let lo = hi === 1 ? 0 : hi >> 1;  // lo does not reach (or is 0), hi does
    while (hi - lo > 1) { const mid = (lo + hi) >> 1; if (reaches(mid)) hi = mid; else lo = mid; }
    marks[name] = hi;
  }
  // The difference view's scale: the 99th percentile of the rank-10 error, as explorer.py's.
  const rank10 = image(Math.min(10, K)), errors = new Float64Array(P);
  rank10.forEach((y, c) => { for (let p = 0; p < P; p++) errors[p] += Math.abs(y[p] - planes[c][p]) / C; });
  errors.sort();
  const diffScale = Math.min(1, Math.max(1 / 255, errors[Math.min(P - 1, Math.floor(0.99 * (P - 1)))]));
  self.postMessage({ type: "marks", marks, diffScale });

  function times(A, v) {  // A v, length R
    const out = new Float64Array(R);
    for (let r = 0; r < R; r++) {
      let sum = 0;
      const o = r * S;
      for (let s = 0; s < S; s++) sum += A[o + s] * v[s];
      out[r] = sum;
    }
    return out;
  }
  function timesT(A, u) {  // Aᵀ u, length S
    const out = new Float64Array(S);
    for (let r = 0; r < R; r++) {
      const x = u[r];
      if (x === 0) continue;
      const o = r * S;
      for (let s = 0; s < S; s++) out[s] += A[o + s] * x;
    }
    return out;
  }
  function randomized(A, k) {
    const p = Math.min(S - k, 8), l = k + p;
    let seed = 12345;
    const gauss = () => {  // Box–Muller on a small LCG: seeded, the same on every run
      seed = (seed * 1103515245 + 12345) % 2147483648; const a = (seed + 1) / 2147483649;
      seed = (seed * 1103515245 + 12345) % 2147483648; const b = (seed + 1) / 2147483649;
      return Math.sqrt(-2 * Math.log(a)) * Math.cos(2 * Math.PI * b);
    };
    let Q = [];
    for (let j = 0; j < l; j++) { const w = new Float64Array(S); for (let s = 0; s < S; s++) w[s] = gauss(); Q.push(times(A, w)); }
    orthonormalize(Q);
    for (let it = 0; it < 2; it++) {
      const Z = Q.map((q) => timesT(A, q)); orthonormalize(Z);
      Q = Z.map((z) => times(A, z)); orthonormalize(Q);
    }
    const B = Q.map((q) => timesT(A, q));  // l rows of length S: B = Qᵀ A
    const small = new Float64Array(l * l);     // B Bᵀ
    for (let a = 0; a < l; a++) for (let b = a; b < l; b++) {
      let sum = 0; for (let s = 0; s < S; s++) sum += B[a][s] * B[b][s];
      small[a * l + b] = small[b * l + a] = sum;
    }
    const { values, vectors } = symmetricEigen(small, l);
    const right = [], sigma = new Float64Array(k), left = [];
    for (let i = 0; i < k; i++) {
      const j = l - 1 - i;
      const v = new Float64Array(S);  // v_i = Bᵀ y_i / σ_i
      for (let a = 0; a < l; a++) { const y = vectors[a * l + j]; if (y !== 0) for (let s = 0; s < S; s++) v[s] += y * B[a][s]; }
      const n = norm(v);
      if (n > 0) for (let s = 0; s < S; s++) v[s] /= n;
      right.push(v);
    }
    signs(right);
    for (let i = 0; i < k; i++) { left.push(times(A, right[i])); sigma[i] = norm(left[i]); }
    return { k, sigma, left, right };
  }
}

function norm(x) { let s = 0; for (let i = 0; i < x.length; i++) s += x[i] * x[i]; return Math.sqrt(s); }

// Deterministic signs: the largest-magnitude entry of each right vector is positive.
function signs(vectors) {
  for (const v of vectors) {
    let best = 0;
    for (let i = 1; i < v.length; i++) if (Math.abs(v[i]) > Math.abs(v[best])) best = i;
    if (v[best] < 0) for (let i = 0; i < v.length; i++) v[i] = -v[i];
  }
}

// Modified Gram–Schmidt, twice ("twice is enough"), in place.
function orthonormalize(Q) {
  for (let pass = 0; pass < 2; pass++) {
    for (let j = 0; j < Q.length; j++) {
      const q = Q[j];
      for (let i = 0; i < j; i++) {
        const p = Q[i]; let dot = 0;
        for (let t = 0; t < q.length; t++) dot += p[t] * q[t];
        for (let t = 0; t < q.length; t++) q[t] -= dot * p[t];
      }
      const n = norm(q);
      for (let t = 0; t < q.length; t++) q[t] = n > 0 ? q[t] / n : 0;
    }
  }
}

// Eigenvalues (ascending) and eigenvectors (columns of an n x n row-major matrix) of a
// symmetric matrix: Householder reduction to tridiagonal form, then the implicit QL method
// (EISPACK's tred2 and tql2, as in Numerical Recipes §11.2-11.3).
function symmetricEigen(A, n) {
  const a = Float64Array.from(A), d = new Float64Array(n), e = new Float64Array(n);
  const z = (i, j) => i * n + j;
  for (let i = n - 1; i > 0; i--) {  // tred2
    const l = i - 1;
    let h = 0, scale = 0;
    if (l > 0) {
      for (let k = 0; k <= l; k++) scale += Math.abs(a[z(i, k)]);
      if (scale === 0) e[i] = a[z(i, l)];
      else {
        for (let k = 0; k <= l; k++) { a[z(i, k)] /= scale; h += a[z(i, k)] * a[z(i, k)]; }
        let f = a[z(i, l)];
        const g = f >= 0 ? -Math.sqrt(h) : Math.sqrt(h);
        e[i] = scale * g; h -= f * g; a[z(i, l)] = f - g; f = 0;
        for (let j = 0; j <= l; j++) {
          a[z(j, i)] = a[z(i, j)] / h;
          let gg = 0;
          for (let k = 0; k <= j; k++) gg += a[z(j, k)] * a[z(i, k)];
          for (let k = j + 1; k <= l; k++) gg += a[z(k, j)] * a[z(i, k)];
          e[j] = gg / h; f += e[j] * a[z(i, j)];
        }
        const hh = f / (h + h);
        for (let j = 0; j <= l; j++) {
          const ff = a[z(i, j)], gg = e[j] - hh * ff;
          e[j] = gg;
          for (let k = 0; k <= j; k++) a[z(j, k)] -= ff * e[k] + gg * a[z(i, k)];
        }
      }
    } else e[i] = a[z(i, l)];
    d[i] = h;
  }
  d[0] = 0; e[0] = 0;
  for (let i = 0; i < n; i++) {
    const l = i - 1;
    if (d[i] !== 0) {
      for (let j = 0; j <= l; j++) {
        let g = 0;
        for (let k = 0; k <= l; k++) g += a[z(i, k)] * a[z(k, j)];
        for (let k = 0; k <= l; k++) a[z(k, j)] -= g * a[z(k, i)];
      }
    }
    d[i] = a[z(i, i)]; a[z(i, i)] = 1;
    for (let j = 0; j <= l; j++) a[z(j, i)] = a[z(i, j)] = 0;
  }
  for (let i = 1; i < n; i++) e[i - 1] = e[i];  // tql2
  e[n - 1] = 0;
  for (let l = 0; l < n; l++) {
    let iter = 0, m;
    do {
      for (m = l; m < n - 1; m++) {
        const dd = Math.abs(d[m]) + Math.abs(d[m + 1]);
        if (Math.abs(e[m]) <= Number.EPSILON * dd) break;
      }
      if (m !== l) {
        if (iter++ === 60) throw new Error("the eigenvalue iteration did not converge");
        let g = (d[l + 1] - d[l]) / (2 * e[l]);
        let r = Math.hypot(g, 1);
        g = d[m] - d[l] + e[l] / (g + (g >= 0 ? Math.abs(r) : -Math.abs(r)));
        let s = 1, c = 1, p = 0, i;
        for (i = m - 1; i >= l; i--) {
          let f = s * e[i];
          const b = c * e[i];
          e[i + 1] = r = Math.hypot(f, g);
          if (r === 0) { d[i + 1] -= p; e[m] = 0; break; }
          s = f / r; c = g / r; g = d[i + 1] - p; r = (d[i] - g) * s + 2 * c * b;
          d[i + 1] = g + (p = s * r); g = c * r - b;
          for (let k = 0; k < n; k++) {
            f = a[z(k, i + 1)];
            a[z(k, i + 1)] = s * a[z(k, i)] + c * f;
            a[z(k, i)] = c * a[z(k, i)] - s * f;
          }
        }
        if (r === 0 && i >= l) continue;
        d[l] -= p; e[l] = g; e[m] = 0;
      }
    } while (m !== l);
  }
  const order = Array.from({ length: n }, (_, i) => i).sort((x, y) => d[x] - d[y]);
  const values = new Float64Array(n), vectors = new Float64Array(n * n);
  order.forEach((j, col) => { values[col] = d[j]; for (let k = 0; k < n; k++) vectors[k * n + col] = a[z(k, j)]; });
  return { values, vectors };
}
