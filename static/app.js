// House number reader: send a photo or a drawing to /predict and show what came back.
// No inline handlers or innerHTML, so the page works under a strict CSP.
'use strict';

(function () {
  const $ = (id) => document.getElementById(id);
  const fileInput = $('file');
  const preview = $('preview');
  const pad = $('pad');
  const clearBtn = $('clear');
  const readBtn = $('read');
  const numberEl = $('number');
  const confidenceEl = $('confidence');
  const modelMsEl = $('model-ms');
  const probsTable = $('probs');
  const errorBox = $('error');
  const busyEl = $('busy');

  // Logical drawing size; strokes are specified in these units so they look
  // the same whatever the screen density or the canvas' displayed width.
  const PAD_W = 320;
  const PAD_H = 160;
  const LINE_WIDTH = 14;
  const ctx = pad.getContext('2d');
  let busy = false;

  // ---------- Result rendering ----------

  const pct = (p) => (Number.isFinite(p) ? Math.round(p * 100) + '%' : '—');

  function argmax(arr) {
    let best = 0;
    for (let i = 1; i < arr.length; i++) if (arr[i] > arr[best]) best = i;
    return best;
  }

  function showError(message) {
    errorBox.textContent = message;
    errorBox.hidden = false;
  }

  function clearResult() {
    errorBox.hidden = true;
    errorBox.textContent = '';
    numberEl.textContent = '—';
    confidenceEl.textContent = '—';
    modelMsEl.textContent = '—';
    probsTable.hidden = true;
    probsTable.tBodies[0].replaceChildren();
  }

  function addRow(tbody, part, top, p) {
    const tr = document.createElement('tr');
    const th = document.createElement('th');
    th.scope = 'row';
    th.textContent = part;
    const tdTop = document.createElement('td');
    tdTop.textContent = top;
    const tdP = document.createElement('td');
    tdP.textContent = pct(p);
    tr.append(th, tdTop, tdP);
    tbody.append(tr);
  }

  function render(data) {
    const number = typeof data.number === 'string' ? data.number : '';
    numberEl.textContent = number === '' ? 'No number found' : number;
    // The server flags readings below the confidence that is 98% right on validation.
    confidenceEl.textContent = pct(data.confidence) + (number !== '' && data.confident === false ? ' (not sure)' : '');
    const ms = Number(data.model_ms);
    // Sub-millisecond times are common on a GPU; keep two decimals so they are not shown as 0.
    modelMsEl.textContent = Number.isFinite(ms) ? ms.toFixed(ms < 1 ? 2 : 1) + ' ms' : '—';

    const probs = data.probabilities || {};
    const tbody = probsTable.tBodies[0];
    tbody.replaceChildren();
    if (Array.isArray(probs.length) && probs.length.length) {
      const k = argmax(probs.length);
      addRow(tbody, 'Length', k === 1 ? '1 digit' : k + ' digits', probs.length[k]);
    }
    // Only the positions the server actually read are meaningful; the rest are padding.
    const digits = Array.isArray(probs.digits) ? probs.digits : [];
    const shown = Math.min(number.length, digits.length);
    for (let i = 0; i < shown; i++) {
      const row = digits[i];
      if (!Array.isArray(row) || !row.length) continue;
      const d = argmax(row);
      addRow(tbody, 'Digit ' + (i + 1), d === 10 ? 'none' : String(d), row[d]);
    }
    probsTable.hidden = tbody.rows.length === 0;
  }

  function setBusy(on) {
    busy = on;
    busyEl.textContent = on ? 'Reading…' : '';
    busyEl.classList.toggle('active', on);
    fileInput.disabled = on;
    clearBtn.disabled = on;
    readBtn.disabled = on;
  }

  // The single path for both inputs, so uploads and drawings behave identically.
  async function predict(fetchOptions) {
    if (busy) return;
    clearResult();
    setBusy(true);
    try {
      let res;
      try {
        res = await fetch('/predict', Object.assign({ method: 'POST' }, fetchOptions));
      } catch (e) {
        showError('Could not reach the server. Check your connection and try again.');
        return;
      }
      let data = null;
      try {
        data = await res.json();
      } catch (e) {
        // Proxies and crashes can return HTML; fall through to a generic message.
      }
      if (!res.ok) {
        showError(data && typeof data.error === 'string' && data.error
          ? data.error
          : 'The server could not read this image (error ' + res.status + ').');
        return;
      }
      if (!data || typeof data !== 'object') {
        showError('The server sent a reply this page does not understand.');
        return;
      }
      render(data);
    } finally {
      setBusy(false);
    }
  }

  // ---------- Upload ----------

  let previewUrl = null;
  fileInput.addEventListener('change', () => {
    const file = fileInput.files && fileInput.files[0];
    if (!file) return;
    // Object URLs avoid reading large phone photos into memory as base64 just to preview them.
    if (previewUrl) URL.revokeObjectURL(previewUrl);
    previewUrl = URL.createObjectURL(file);
    preview.src = previewUrl;
    preview.hidden = false;

    const form = new FormData();
    form.append('image', file);
    // No Content-Type header: the browser must add the multipart boundary itself.
    predict({ body: form });
  });

  // ---------- Drawing ----------

  function setupPad() {
    // Back the canvas with device pixels so strokes stay sharp on high-density screens.
    const dpr = window.devicePixelRatio || 1;
    pad.width = Math.round(PAD_W * dpr);
    pad.height = Math.round(PAD_H * dpr);
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.lineWidth = LINE_WIDTH;
    ctx.lineCap = 'round';
    ctx.lineJoin = 'round';
    ctx.strokeStyle = '#111';
    ctx.fillStyle = '#111';
    clearPad();
  }

  function clearPad() {
    // Paint white rather than clearing: a transparent PNG would reach the model as black.
    ctx.save();
    ctx.fillStyle = '#fff';
    ctx.fillRect(0, 0, PAD_W, PAD_H);
    ctx.restore();
  }

  // The canvas may be shrunk by CSS on narrow phones, so map from displayed to logical pixels.
  function toPad(e) {
    const r = pad.getBoundingClientRect();
    return {
      x: ((e.clientX - r.left) / r.width) * PAD_W,
      y: ((e.clientY - r.top) / r.height) * PAD_H,
    };
  }

  let drawing = false;
  let last = null;

  pad.addEventListener('pointerdown', (e) => {
    if (busy || (e.pointerType === 'mouse' && e.button !== 0)) return;
    e.preventDefault();
    // Capture keeps the stroke going when the finger or mouse strays outside the canvas.
    pad.setPointerCapture(e.pointerId);
    drawing = true;
    last = toPad(e);
    // A dot, so a single tap (e.g. a "1" drawn as a short mark) still leaves ink.
    ctx.beginPath();
    ctx.arc(last.x, last.y, LINE_WIDTH / 2, 0, Math.PI * 2);
    ctx.fill();
  });

  pad.addEventListener('pointermove', (e) => {
    if (!drawing) return;
    e.preventDefault();
    // Coalesced events give smoother curves when the browser batches fast movements.
    const events = e.getCoalescedEvents ? e.getCoalescedEvents() : [];
    for (const ev of events.length ? events : [e]) {
      const p = toPad(ev);
      ctx.beginPath();
      ctx.moveTo(last.x, last.y);
      ctx.lineTo(p.x, p.y);
      ctx.stroke();
      last = p;
    }
  });

  function endStroke() {
    drawing = false;
    last = null;
  }
  pad.addEventListener('pointerup', endStroke);
  pad.addEventListener('pointercancel', endStroke);
  pad.addEventListener('lostpointercapture', endStroke);

  clearBtn.addEventListener('click', () => {
    clearPad();
    clearResult();
  });

  readBtn.addEventListener('click', () => {
    predict({
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ image: pad.toDataURL('image/png') }),
    });
  });

  setupPad();
})();
