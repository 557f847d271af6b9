// The result panel: the picture the model saw with the number's box over it, the number, how
// sure the model is, and its probabilities part by part. Built with DOM calls, never innerHTML.

const $ = (id) => document.getElementById(id);
const el = {
  busy: $('busy'),
  announce: $('announce'),
  error: $('error'),
  empty: $('empty'),
  seen: $('seen'),
  frame: $('frame'),
  img: $('seen-img'),
  boxes: $('boxes'),
  caption: $('seen-caption'),
  reading: $('reading'),
  number: $('number'),
  verdict: $('verdict'),
  sureness: $('sureness'),
  confidence: $('confidence'),
  modelMs: $('model-ms'),
  others: $('others'),
  probs: $('probs'),
  modelName: $('model-name'),
};

const pct = (p) => (Number.isFinite(p) ? Math.round(p * 100) + '%' : '—');

function argsort(values) {
  return values.map((v, i) => i).sort((a, b) => values[b] - values[a]);
}

const digitName = (d) => (d === 10 ? 'none' : String(d));
const lengthName = (k) => (k === 1 ? '1 digit' : k + ' digits');
const nextBest = (name, p) => name + ' (' + pct(p) + ')'; // '7 (2%)', not '7 2%' read as 72%

let shown = null; // the picture on show: {url, width, height} in the pixels that were sent

export function setBusy(on) {
  el.busy.textContent = on ? 'Reading…' : '';
  el.busy.classList.toggle('active', on);
}

export function showError(message) {
  el.error.textContent = message;
  el.error.hidden = false;
  el.empty.hidden = true;
  el.announce.textContent = '';
}

export function clearReading() {
  el.error.hidden = true;
  el.error.textContent = '';
  el.reading.hidden = true;
  el.boxes.replaceChildren();
  el.announce.textContent = '';
}

// Everything back to the first state, e.g. when the drawing that was read is cleared.
export function reset() {
  clearReading();
  el.seen.hidden = true;
  el.img.removeAttribute('src');
  shown = null;
  el.empty.hidden = false;
}

// Said under the answer to a picture the browser cannot display (HEIC in Chromium or Firefox),
// which the server decodes and reads all the same.
const NOT_SHOWN = ' · this browser cannot display this picture';

function nameUnshown() {
  el.frame.hidden = true;
  if (!el.caption.textContent.endsWith(NOT_SHOWN)) el.caption.textContent += NOT_SHOWN;
  el.seen.hidden = false;
}

// Show the picture at once, before the server answers. width/height: pixels of what is sent.
export function showPicture({ url, width, height, alt, caption }, onShown) {
  shown = { url, width, height, unshown: false };
  el.empty.hidden = true;
  el.frame.hidden = false;
  el.boxes.replaceChildren();
  el.img.alt = alt;
  el.caption.textContent = caption;
  // The frame takes the picture's shape, so boxes placed in fractions of it land on the picture.
  el.img.onload = () => {
    if (el.img.getAttribute('src') !== url) return;
    el.frame.style.setProperty('--aspect', String(el.img.naturalWidth / el.img.naturalHeight));
    el.seen.hidden = false;
    if (onShown) onShown();
  };
  // A file the browser cannot show (not an image, or a format it lacks): the server's answer says
  // why, or, if it reads the picture, showReading names the file without the empty frame.
  el.img.onerror = () => {
    if (el.img.getAttribute('src') !== url) return;
    shown.unshown = true;
    if (el.reading.hidden) el.seen.hidden = true;
    else nameUnshown();
  };
  el.seen.hidden = true;
  el.img.src = url;
}

// The size of what is sent, once known (a photo is decoded, and maybe shrunk, after it shows).
export function setSize(width, height) {
  if (shown) Object.assign(shown, { width, height });
}

export function setCaption(text) {
  el.caption.textContent = text;
}

function addBox(box, size, className, label) {
  if (!Array.isArray(box) || box.length !== 4 || !size.width || !size.height) return;
  const [x, y, w, h] = box.map(Number);
  if (![x, y, w, h].every(Number.isFinite) || w <= 0 || h <= 0) return;
  const div = document.createElement('div');
  div.className = 'box ' + className;
  // Fractions of the picture that was sent; the frame scales them to its displayed size.
  div.style.setProperty('--x', String(x / size.width));
  div.style.setProperty('--y', String(y / size.height));
  div.style.setProperty('--w', String(w / size.width));
  div.style.setProperty('--h', String(h / size.height));
  if (label) {
    const tag = document.createElement('span');
    tag.className = 'box-label';
    tag.textContent = label;
    div.append(tag);
  }
  el.boxes.append(div);
}

// Whether two [x, y, w, h] boxes share any area.
function overlaps(a, b) {
  if (!Array.isArray(a) || !Array.isArray(b) || a.length !== 4 || b.length !== 4) return false;
  const [ax, ay, aw, ah] = a.map(Number);
  const [bx, by, bw, bh] = b.map(Number);
  return ax < bx + bw && bx < ax + aw && ay < by + bh && by < ay + ah;
}

function addRow(tbody, part, top, p, next) {
  const tr = document.createElement('tr');
  const th = document.createElement('th');
  th.scope = 'row';
  th.textContent = part;
  const reads = document.createElement('td');
  reads.textContent = top;
  const prob = document.createElement('td');
  prob.className = 'p';
  const bar = document.createElement('span');
  bar.className = 'bar';
  bar.style.setProperty('--p', String(Math.max(0, Math.min(1, p || 0))));
  bar.setAttribute('aria-hidden', 'true');
  prob.append(bar, document.createTextNode(pct(p)));
  const nextTd = document.createElement('td');
  nextTd.className = 'next';
  nextTd.textContent = next;
  tr.append(th, reads, prob, nextTd);
  tbody.append(tr);
}

function fillTable(data, number) {
  const probs = data.probabilities || {};
  const tbody = el.probs.tBodies[0];
  tbody.replaceChildren();
  const length = Array.isArray(probs.length) ? probs.length.map(Number) : [];
  if (length.length) {
    const [k, second] = argsort(length);
    addRow(tbody, 'Length', lengthName(k), length[k],
      second === undefined ? '' : nextBest(lengthName(second), length[second]));
  }
  // Only the positions of the reading mean something; the rest are the heads' padding.
  const digits = Array.isArray(probs.digits) ? probs.digits : [];
  for (let i = 0; i < Math.min(number.length, digits.length); i++) {
    const row = Array.isArray(digits[i]) ? digits[i].map(Number) : [];
    if (!row.length) continue;
    const [d, second] = argsort(row);
    addRow(tbody, 'Digit ' + (i + 1), digitName(d), row[d],
      second === undefined ? '' : nextBest(digitName(second), row[second]));
  }
  el.probs.hidden = tbody.rows.length === 0;
}

// What a /predict reply says, in the fields the page uses.
function answerOf(data) {
  const number = typeof data.number === 'string' ? data.number : '';
  // `found` comes with the localiser; before it, an empty reading is the same answer.
  const found = data.found !== false && number !== '';
  return { number, found, confident: data.confident !== false, confidence: Number(data.confidence) };
}

// The answer in one sentence: what a screen reader hears, and what the pad repeats on phones.
export function summary(data) {
  const { number, found, confident, confidence } = answerOf(data);
  return found ? 'Read ' + number + ', confidence ' + pct(confidence) + (confident ? '.' : ', not sure.') : 'No number found.';
}

// data: the /predict reply. truth: the true number of a sample photo, else null.
export function showReading(data, truth) {
  clearReading();
  const { number, found, confident, confidence } = answerOf(data);

  el.number.textContent = found ? number : 'No number found';
  el.number.classList.toggle('none', !found);
  el.sureness.className = 'sureness ' + (!found ? 'none' : confident ? 'sure' : 'unsure');
  el.sureness.textContent = !found
    ? 'The reader found no house number in this picture.'
    : confident
      ? 'Sure: the reader is rarely wrong at this confidence.'
      : 'Not sure: below the confidence at which the reader is right 98% of the time.';

  if (truth !== null && truth !== undefined) {
    const right = found && number === truth;
    el.verdict.hidden = false;
    el.verdict.className = 'verdict ' + (right ? 'right' : 'wrong');
    el.verdict.textContent = (right ? 'Right: ' : 'Wrong: ') + 'the photo shows ' + truth + '.';
  } else {
    el.verdict.hidden = true;
  }

  el.confidence.textContent = found ? pct(confidence) : '—';
  const ms = Number(data.model_ms);
  // Sub-millisecond times are common; keep two decimals so they do not show as 0.
  el.modelMs.textContent = Number.isFinite(ms) ? ms.toFixed(ms < 1 ? 2 : 1) + ' ms' : '—';
  el.modelName.textContent = typeof data.model === 'string' ? 'Model: ' + data.model : '';

  // Boxes are in the pixels of the picture that was sent; the server also says its size.
  const size = shown && shown.width && shown.height ? shown
    : { width: Number(data.image && data.image.width), height: Number(data.image && data.image.height) };
  const candidates = Array.isArray(data.candidates) ? data.candidates : [];
  // With no answer, every region read is another place; with one, the first is the answer.
  const others = candidates.slice(found ? 1 : 0).filter((c) => c && typeof c.number === 'string' && c.number !== '');
  // A drawing's readings (whole, digit by digit) share the ink's box: draw it once. Another look at
  // the answer's own number (the same digits, over the answer's box) would only repeat it.
  const sameBox = (c) => found && Array.isArray(c.box) && Array.isArray(data.box) && c.box.join() === data.box.join();
  const repeat = (c) => found && c.number === number && overlaps(c.box, data.box);
  // The answer's box is tagged with its number and the others with a question mark, so that the eye
  // does not take another guess for the answer.
  for (const c of others) if (!sameBox(c) && !repeat(c)) addBox(c.box, size, 'other', c.number + '?');
  if (found) addBox(data.box, size, 'main', number);
  if (Array.isArray(data.digit_boxes)) for (const b of data.digit_boxes) addBox(b, size, 'digit', null);
  // The text lists other numbers only: a drawing read whole and digit by digit often agrees with itself.
  // Candidates are ranked by where a number most likely is, not by how sure each reading is, so a
  // reading elsewhere can be surer than the answer: say why it is not the answer.
  const alternatives = others.filter((c) => !found || c.number !== number);
  const listed = (cs) => cs.map((c) => c.number + ' (' + pct(Number(c.confidence)) + ')').join(', ');
  const asRead = alternatives.filter(sameBox);
  const elsewhere = alternatives.filter((c) => !sameBox(c));
  el.others.hidden = alternatives.length === 0;
  el.others.textContent = [
    asRead.length ? 'Also read as: ' + listed(asRead) + '.' : '',
    elsewhere.length && found ? 'Also read, in ' + (elsewhere.length === 1 ? 'a dashed box' : 'dashed boxes')
      + ' less likely to hold the number: ' + listed(elsewhere) + '.' : '',
    elsewhere.length && !found ? 'Nothing looked enough like a house number to answer; in '
      + (elsewhere.length === 1 ? 'the dashed box' : 'the dashed boxes') + ' it read: ' + listed(elsewhere) + '.' : '',
  ].filter(Boolean).join(' ');

  // With no number, the heads' guesses describe nothing on the picture: no table.
  if (found) fillTable(data, number);
  else el.probs.hidden = true;
  el.reading.hidden = false;
  if (shown && shown.unshown) nameUnshown();
  // A sample's verdict is spoken too: whether the reader got it right is what a sample is for.
  el.announce.textContent = summary(data) + (el.verdict.hidden ? '' : ' ' + el.verdict.textContent);
}
