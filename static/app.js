// House number reader: wires the inputs (file picker, drop, paste, drawing pad, samples) to
// POST /predict and to the result panel. Modules and DOM calls only, no inline code or
// innerHTML, so the page runs under a strict Content-Security-Policy.
import { Pad } from './pad.js';
import { prepare } from './picture.js';
import * as result from './result.js';

const $ = (id) => document.getElementById(id);
// The server's MAX_UPLOAD_BYTES, written into the page as it is served (app/pages.py): the one figure.
const MAX_BYTES = Number(document.querySelector('main').dataset.maxUploadBytes);
const AUTO_READ_MS = 800; // a pause this long after a stroke reads the drawing
// Heroku's router gives up on a request after 30 s, and no read takes near that: waiting longer
// for an answer is waiting for one that will not come.
const ANSWER_MS = 35000;
// 35 s at 60 kbit/s, a weak mobile signal's upload: a picture of this size or more may not have been sent.
const SLOW_SEND_BYTES = 250000;
// Room for the multipart wrapper around the file (boundary, headers, file name): the server's
// limit counts the whole request, so a file just under it is re-encoded rather than refused.
const FORM_BYTES = 8192;
const FILE_BYTES = MAX_BYTES - FORM_BYTES;
const PAD = { width: 480, height: 240, lineWidth: 16 }; // logical drawing size and pen width

// An error whose message is meant for the visitor.
class Problem extends Error {
  constructor(message, status = 0) {
    super(message);
    this.status = status; // the server's, where it refused the picture
  }
}

const mb = (bytes) => (bytes / 1e6).toFixed(1) + ' MB';

// ---------- Sending ----------

let ticket = 0; // the newest request wins: older answers are dropped
let controller = null;
let objectUrl = null;
let source = null; // what the result shows: 'photo', 'drawing' or 'sample'
let timer = null; // the drawing's pending automatic read
let underWay = null; // the kind of read under way, if any
// Counts what changed the drawing (a stroke begun, Undo, Clear): a picture of the pad taken across a
// change shows a drawing no longer there.
let drawingChanges = 0;

// kind: 'drawing' for the pad, whose ink is the number; 'photo' for anything else.
async function post(blob, kind, signal) {
  const form = new FormData();
  form.append('image', blob, blob.name || 'picture');
  // Its own controller, aborted by the caller's signal (a newer read) or by the clock, until the
  // whole answer is in: a server can stall after its headers too.
  const request = new AbortController();
  const stop = () => request.abort();
  signal.addEventListener('abort', stop);
  const clock = setTimeout(stop, ANSWER_MS);
  let answered = false; // the answer's headers came: the picture was sent
  const failed = (e, otherwise) => {
    if (signal.aborted) return e;
    if (request.signal.aborted) {
      // fetch() cannot tell an upload still under way from a server still thinking; a picture this
      // big on one bar of signal is the likelier (the server itself gives up on a body after 30 s).
      if (!answered && blob.size >= SLOW_SEND_BYTES) {
        return new Problem('No answer within ' + ANSWER_MS / 1000 + ' seconds: on a slow connection a picture of ' +
          mb(blob.size) + ' can take longer than that to send. Try again with a better signal, or a smaller photo.');
      }
      return new Problem('The reader did not answer within ' + ANSWER_MS / 1000 + ' seconds. Try again in a moment.');
    }
    return otherwise;
  };
  try {
    let res;
    try {
      // No Content-Type header: the browser adds the multipart boundary itself.
      res = await fetch('/predict?kind=' + kind, { method: 'POST', body: form, signal: request.signal });
      answered = true;
    } catch (e) {
      throw failed(e, new Problem('Could not reach the reader. Check your connection and try again.'));
    }
    return await answerOf(res, failed);
  } finally {
    clearTimeout(clock);
    signal.removeEventListener('abort', stop);
  }
}

// A /predict response -> its JSON reading, or a Problem that says what went wrong. failed(e, otherwise):
// what to throw when reading the body fails (the read was stopped, or `otherwise`).
async function answerOf(res, failed) {
  if (res.status === 429) {
    // The page's own words: the server's message is written for an API's caller.
    const wait = Number(res.headers.get('Retry-After'));
    throw new Problem('Too many readings from your address in a short time. Try again ' +
      (wait > 0 ? 'in ' + wait + (wait === 1 ? ' second.' : ' seconds.') : 'later.'));
  }
  let data = null;
  try {
    data = await res.json();
  } catch (e) {
    const stopped = failed(e, null);
    if (stopped) throw stopped;
    // A proxy or a crash can answer with HTML: the status still says what happened.
  }
  if (!res.ok) {
    if (data && typeof data.error === 'string' && data.error) throw new Problem(data.error, res.status);
    if (res.status === 413) throw new Problem('This picture is too large for the reader (at most ' + mb(MAX_BYTES) + ').');
    if (res.status >= 500) throw new Problem('The reader had a problem (error ' + res.status + '). Try again in a moment.');
    throw new Problem('The reader could not read this picture (error ' + res.status + ').');
  }
  if (!data || typeof data !== 'object') throw new Problem('The reader sent an answer this page does not understand.');
  return data;
}

// picture: what to show at once; makeBlob: async () => {blob, width, height, note}; truth: a sample's
// number; reveal: bring the result into view once there is something in it.
async function read(kind, picture, makeBlob, { truth = null, reveal = false } = {}) {
  const mine = ++ticket;
  // The visitor's last action wins: a drawing's pending read would replace this photo's answer.
  clearTimeout(timer);
  if (kind !== 'drawing') padAnswer(''); // nor is a drawing's answer (or its "Reading…") left under the pad
  if (controller) controller.abort();
  controller = new AbortController();
  const { signal } = controller;
  source = kind;
  underWay = kind;
  for (const b of document.querySelectorAll('.sample[aria-current]')) b.removeAttribute('aria-current');
  result.clearReading();
  result.showPicture(picture, reveal ? revealResult : null);
  result.setBusy(true);
  try {
    const { blob, width, height, note } = await makeBlob();
    if (mine !== ticket) return;
    if (width && height) result.setSize(width, height);
    if (note) result.setCaption(picture.caption + note);
    if (blob.size > FILE_BYTES) {
      // No size: the browser could not decode it, and it may not be a picture at all (or a HEIC).
      throw new Problem((width ? 'This picture' : 'This file') + ' is ' + mb(blob.size) + '; the reader takes at most ' + mb(MAX_BYTES) + '.');
    }
    const data = await post(blob, kind === 'drawing' ? 'drawing' : 'photo', signal).catch((e) => {
      // This page shrinks what the browser can decode; a picture it cannot (a phone's HEIC in most
      // browsers) goes as it is, and a 48-megapixel one is over the server's limit.
      if (e instanceof Problem && e.status === 413 && !width) {
        throw new Problem(e.message + ' This browser could not shrink it before sending: take the photo at a ' +
          'lower resolution, or save it as a JPEG.');
      }
      throw e;
    });
    if (mine !== ticket) return;
    result.showReading(data, truth);
    if (kind === 'drawing') padAnswer(result.summary(data));
  } catch (e) {
    if (mine !== ticket || signal.aborted) return;
    const message = e instanceof Problem ? e.message : 'Something went wrong in this page: ' + e.message;
    result.showError(message);
    if (kind === 'drawing') padAnswer(message);
  } finally {
    if (mine === ticket) {
      underWay = null;
      result.setBusy(false);
      if (reveal) revealResult();
    }
  }
}

function cancel() {
  ticket++;
  if (controller) controller.abort();
  underWay = null;
  result.setBusy(false);
}

// A message about no picture (an empty pad, a paste without a picture): it replaces the result,
// which would otherwise seem to be what went wrong. underPad: about the pad, so also said under it
// (on a phone the result card is out of view).
function complain(message, { underPad = false } = {}) {
  cancel();
  result.reset();
  source = null;
  padAnswer(underPad ? message : '');
  result.showError(message);
}

function newObjectUrl(blob) {
  // Object URLs show big phone photos without reading them into memory as base64.
  if (objectUrl) URL.revokeObjectURL(objectUrl);
  objectUrl = URL.createObjectURL(blob);
  return objectUrl;
}

// On phones the result sits below the inputs: bring it into view for a photo or a sample
// (not for a drawing, whose pad the visitor is still using). Once read, the number and whether it
// is sure must show too: below a phone photo's picture they end at the screen's edge or past it.
function revealResult() {
  const top = $('result').getBoundingClientRect().top;
  const answer = $('reading').hidden ? null : $('sureness').getBoundingClientRect().bottom + 12;
  if (top >= 0 && top < window.innerHeight / 2 && (answer === null || answer <= window.innerHeight)) return;
  // The card's top near the screen's top (its scroll margin), unless the answer would still be below
  // the screen's edge.
  const margin = parseFloat(getComputedStyle($('result')).scrollMarginTop) || 0;
  const by = answer === null || answer - top + margin <= window.innerHeight ? top - margin : answer - window.innerHeight;
  const smooth = !window.matchMedia('(prefers-reduced-motion: reduce)').matches;
  // From where the page is now, so that a reveal during another's smooth scroll aims at the same place.
  window.scrollTo({ top: window.scrollY + by, behavior: smooth ? 'smooth' : 'auto' });
}

// ---------- Photos: picker, drop, paste ----------

function readPhoto(file, how) {
  const caption = how === 'pasted' ? 'Pasted picture' : file.name || 'Your photo';
  read('photo', { url: newObjectUrl(file), alt: 'The picture you gave', caption }, async () => {
    const p = await prepare(file, FILE_BYTES);
    let note = '';
    if (p.resized && (p.width !== p.originalWidth || p.height !== p.originalHeight)) {
      note = ' · ' + p.originalWidth + '×' + p.originalHeight + ' px, sent shrunk to ' + p.width + '×' + p.height;
    } else if (p.width) {
      note = ' · ' + p.width + '×' + p.height + ' px';
    }
    return { blob: p.blob, width: p.width, height: p.height, note };
  }, { reveal: true });
}

const fileInput = $('file');
fileInput.addEventListener('change', () => {
  const file = fileInput.files && fileInput.files[0];
  if (file) readPhoto(file, 'chosen');
  fileInput.value = ''; // so that choosing the same file again reads it again
});

// Drops anywhere on the page; a drop the page does not handle would navigate away from it.
let dragDepth = 0;
const dragging = (on) => document.body.classList.toggle('dragging', on);
document.addEventListener('dragenter', (e) => {
  e.preventDefault();
  dragDepth++;
  dragging(true);
});
document.addEventListener('dragover', (e) => {
  e.preventDefault();
  if (e.dataTransfer) e.dataTransfer.dropEffect = 'copy';
});
document.addEventListener('dragleave', () => {
  dragDepth = Math.max(0, dragDepth - 1);
  if (dragDepth === 0) dragging(false);
});
document.addEventListener('drop', (e) => {
  e.preventDefault();
  dragDepth = 0;
  dragging(false);
  const file = e.dataTransfer && e.dataTransfer.files[0];
  if (file) readPhoto(file, 'dropped');
  else complain('Drop a picture file (a photo saved on your device) to read it.');
});

document.addEventListener('paste', (e) => {
  const files = e.clipboardData ? Array.from(e.clipboardData.files) : [];
  const file = files.find((f) => f.type.startsWith('image/')) || files[0];
  if (file) {
    e.preventDefault();
    readPhoto(file, 'pasted');
  } else {
    complain('The clipboard holds no picture. Copy a photo or an image, then paste again.');
  }
});

// ---------- Drawing ----------

const canvas = $('pad');
const undoBtn = $('undo');
const clearBtn = $('clear');
const padAnswerEl = $('pad-answer');

// On a phone the result card is below the pad, out of view while drawing: the answer is repeated
// under the pad (for the eyes only; the result card's live region speaks it).
function padAnswer(text) {
  padAnswerEl.textContent = text;
  padAnswerEl.hidden = !text;
}

const readBtn = $('read');

const pad = new Pad(canvas, {
  ...PAD,
  frame: canvas.parentElement,
  onChange: () => {
    // A focused button that disables itself drops the keyboard's focus to the top of the page.
    if (pad.isEmpty && [undoBtn, clearBtn].includes(document.activeElement)) readBtn.focus();
    undoBtn.disabled = pad.isEmpty;
    clearBtn.disabled = pad.isEmpty;
  },
  // A new stroke postpones the automatic read: the visitor is still drawing. A read of the drawing
  // already under way no longer describes the pad, and its answer would come mid-stroke (a 7's first
  // stroke read as a confident 1): it is dropped, and the stroke's end reads the pad again.
  onStrokeStart: () => {
    drawingChanges++;
    clearTimeout(timer);
    if (underWay === 'drawing') {
      cancel();
      padAnswer('');
    }
  },
  onStrokeEnd: () => schedule(),
});
window.matchMedia('(resolution: ' + (window.devicePixelRatio || 1) + 'dppx)').addEventListener('change', () => pad.resize());

function schedule() {
  clearTimeout(timer);
  timer = setTimeout(readDrawing, AUTO_READ_MS);
}

async function readDrawing() {
  clearTimeout(timer);
  if (pad.isEmpty) {
    complain('Draw a number on the pad first.', { underPad: true });
    return;
  }
  const changes = drawingChanges;
  const newest = ticket;
  const blob = await pad.toBlob();
  // The picture is taken asynchronously (in Chromium, after a finger's stroke, it waits up to a second for an
  // idle moment): a stroke begun or Undo or Clear meanwhile is not yet a read under way to drop, and the
  // picture would answer for a drawing no longer on the pad. The stroke's end, or Undo, reads the pad again.
  // A photo or sample chosen meanwhile is the newer action: sent now, the picture would abort its read.
  if (!blob || changes !== drawingChanges || newest !== ticket) return;
  padAnswer('Reading…');
  read('drawing', { url: newObjectUrl(blob), alt: 'Your drawing', caption: 'Your drawing' },
    async () => ({ blob, width: PAD.width, height: PAD.height, note: '' }));
}

// Undo down to nothing, or clear: a result of the drawing no longer describes the pad.
function drawingChanged() {
  drawingChanges++;
  if (!pad.isEmpty) {
    schedule();
  } else {
    clearTimeout(timer);
    padAnswer('');
    if (source === 'drawing') {
      cancel();
      result.reset();
      source = null;
    }
  }
}

readBtn.addEventListener('click', readDrawing);
undoBtn.addEventListener('click', () => {
  // An Undo refused mid-stroke changed nothing: counted, it scheduled a read of the half-drawn stroke.
  if (pad.undo()) drawingChanged();
});
clearBtn.addEventListener('click', () => {
  pad.clear();
  drawingChanged();
});

// ---------- Samples ----------

for (const button of document.querySelectorAll('.sample')) {
  button.addEventListener('click', () => {
    const { src, number, width, height, name } = button.dataset;
    read('sample', { url: src, alt: name, caption: name + ' · ' + width + '×' + height + ' px' }, async () => {
      let res;
      try {
        res = await fetch(src);
      } catch (e) {
        throw new Problem('Could not load the sample photo. Check your connection and try again.');
      }
      if (!res.ok) throw new Problem('Could not load the sample photo (error ' + res.status + ').');
      return { blob: await res.blob(), width: Number(width), height: Number(height), note: '' };
    }, { truth: number, reveal: true });
    button.setAttribute('aria-current', 'true');
  });
}
