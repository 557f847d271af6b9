// The drawing pad: pointer strokes (mouse, finger, pen) kept as lists of points, so that
// undo can redraw what is left.

const INK = '#111';

export class Pad {
  // width/height: the logical drawing size. Strokes are kept in these units, whatever the
  // screen density or the canvas' displayed size, so a drawing looks the same everywhere.
  // frame: an element around the canvas where a stroke may begin too (a finger put down just
  // beside the pad); the stroke is still the canvas's, its first point off the picture.
  constructor(canvas, { width, height, lineWidth, frame, onChange, onStrokeStart, onStrokeEnd }) {
    this.canvas = canvas;
    this.frame = frame || canvas;
    this.width = width;
    this.height = height;
    this.lineWidth = lineWidth;
    this.onChange = onChange || (() => {});
    this.onStrokeStart = onStrokeStart || (() => {});
    this.onStrokeEnd = onStrokeEnd || (() => {});
    this.strokes = [];
    this.current = null;
    this.ctx = canvas.getContext('2d');
    this.resize();
    this.listen();
  }

  get isEmpty() {
    return this.strokes.length === 0;
  }

  // Back the canvas with device pixels so strokes stay sharp on high-density screens.
  resize() {
    const dpr = window.devicePixelRatio || 1;
    this.canvas.width = Math.round(this.width * dpr);
    this.canvas.height = Math.round(this.height * dpr);
    this.ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    this.redraw();
  }

  // The canvas may be shrunk by CSS on narrow phones, so map displayed to logical pixels. Its picture
  // fills the box inside its border (style.css gives it no padding): measured from the border box, the
  // ink landed up to 2 CSS pixels off the pointer, towards the middle.
  toPad(e) {
    const c = this.canvas;
    const r = c.getBoundingClientRect();
    const x = e.clientX - r.left - c.clientLeft;
    const y = e.clientY - r.top - c.clientTop;
    return [(x / (r.width - 2 * c.clientLeft)) * this.width, (y / (r.height - 2 * c.clientTop)) * this.height];
  }

  listen() {
    const c = this.canvas;
    this.frame.addEventListener('pointerdown', (e) => {
      if (e.pointerType === 'mouse' && e.button !== 0) return;
      e.preventDefault();
      // A second finger (a palm, a pinch) while a stroke is drawn would cut it short and draw its own.
      if (this.current) return;
      // Capture keeps the stroke going when the finger or mouse strays outside the canvas.
      c.setPointerCapture(e.pointerId);
      this.current = { id: e.pointerId, points: [this.toPad(e)] };
      this.strokes.push(this.current.points);
      this.paint(this.current.points, 0);
      this.onStrokeStart();
      this.onChange();
    });
    c.addEventListener('pointermove', (e) => {
      if (!this.current || e.pointerId !== this.current.id) return;
      e.preventDefault();
      const points = this.current.points;
      const from = points.length - 1;
      // Coalesced events give smoother curves when the browser batches fast movements.
      const events = e.getCoalescedEvents ? e.getCoalescedEvents() : [];
      for (const ev of events.length ? events : [e]) points.push(this.toPad(ev));
      this.paint(points, from);
    });
    const end = (e) => {
      if (!this.current || e.pointerId !== this.current.id) return;
      this.current = null;
      // Painted again whole, the drawing no longer depends on how the moves were batched,
      // so what is sent (and what undo leaves) is always the same picture.
      this.redraw();
      this.onStrokeEnd();
    };
    c.addEventListener('pointerup', end);
    c.addEventListener('pointercancel', end);
    c.addEventListener('lostpointercapture', end);
  }

  // Paint a stroke from point index `from` on; a lone point is a dot, so a tap leaves ink.
  paint(points, from) {
    const ctx = this.ctx;
    ctx.lineWidth = this.lineWidth;
    ctx.lineCap = 'round';
    ctx.lineJoin = 'round';
    ctx.strokeStyle = INK;
    ctx.fillStyle = INK;
    if (points.length === 1) {
      ctx.beginPath();
      ctx.arc(points[0][0], points[0][1], this.lineWidth / 2, 0, Math.PI * 2);
      ctx.fill();
      return;
    }
    ctx.beginPath();
    ctx.moveTo(points[Math.max(0, from)][0], points[Math.max(0, from)][1]);
    for (let i = Math.max(1, from + 1); i < points.length; i++) ctx.lineTo(points[i][0], points[i][1]);
    ctx.stroke();
  }

  redraw() {
    // Paint white rather than clearing: the drawing is sent as dark ink on a white sheet.
    this.ctx.fillStyle = '#fff';
    this.ctx.fillRect(0, 0, this.width, this.height);
    for (const stroke of this.strokes) this.paint(stroke, 0);
  }

  // Whether a stroke was taken off: none is while one is drawn (Undo reached by the keyboard or another finger).
  undo() {
    if (this.current) return false;
    this.strokes.pop();
    this.redraw();
    this.onChange();
    return true;
  }

  clear() {
    this.current = null;
    this.strokes = [];
    this.redraw();
    this.onChange();
  }

  // The drawing as a PNG at its logical size, the same for every screen.
  toBlob() {
    const out = document.createElement('canvas');
    out.width = this.width;
    out.height = this.height;
    const ctx = out.getContext('2d');
    ctx.drawImage(this.canvas, 0, 0, this.width, this.height);
    return new Promise((resolve) => out.toBlob(resolve, 'image/png'));
  }
}
