'use strict';
// Fathom's long-lived math renderer: TeX -> MathJax 3 SVG -> resvg PNG on an opaque dark plate.
//
// Protocol: one JSON request per line on stdin, one JSON response per line on stdout, in order.
//   {"id": 1, "op": "formula", "tex": "...", "display": true, "emphasis": false}
//   {"id": 2, "op": "paragraph", "pieces": [{"text": "...", "bold": false} | {"tex": "..."}]}
//   {"id": 3, "op": "ping"}
// Response: {"id": 1, "ok": true, "png": "<base64>", "width": px, "height": px}
//        or {"id": 1, "ok": false, "error": "why"}.
// The TeX input has no way to reach files, the network or a shell: the `require`, `autoload` and
// `html` packages are not loaded, and nothing here reads anything but stdin. Size limits are
// enforced before rasterising; the Python side bounds the time and restarts this process.

const readline = require('readline');
const {mathjax} = require('mathjax-full/js/mathjax.js');
const {TeX} = require('mathjax-full/js/input/tex.js');
const {MathML} = require('mathjax-full/js/input/mathml.js');
const {SVG} = require('mathjax-full/js/output/svg.js');
const {liteAdaptor} = require('mathjax-full/js/adaptors/liteAdaptor.js');
const {RegisterHTMLHandler} = require('mathjax-full/js/handlers/html.js');
require('mathjax-full/js/input/tex/AllPackages.js');
const {Resvg} = require('@resvg/resvg-js');

const config = Object.assign(
  {
    fg: '#DBDEE1', // light glyphs...
    bg: '#313338', // ...on an opaque dark plate, readable on dark and light chat themes
    accent: '#F0B232', // frame of \boxed and of the final-answer plate
    emPx: 16, // font size at 1x
    scale: 2,
    padEm: 0.3,
    paragraphWidthEm: 30,
    maxTexChars: 8000,
    maxWidthPx: 4096,
    maxHeightPx: 4096,
    maxPixels: 8000000,
    fontFiles: [],
  },
  JSON.parse(process.argv[2] || '{}'),
);

const PACKAGES = [
  'base', 'ams', 'amscd', 'bbox', 'boldsymbol', 'braket', 'cancel', 'cases', 'centernot',
  'color', 'colortbl', 'configmacros', 'enclose', 'extpfeil', 'gensymb', 'mathtools', 'mhchem',
  'textcomp', 'textmacros', 'unicode', 'upgreek',
];
// Not loaded: `newcommand` (a \newcommand, \def or \let would outlive the formula that
// defines it and change how later requests render), `require`/`autoload` (load code),
// `html` (attributes), `noerrors`/`noundefined` (errors must fail, so the chain falls back).
const STATEFUL = new RegExp(
  '\\\\(?:definecolor|newcommand|renewcommand|providecommand|def|gdef|edef|let|newenvironment' +
    '|renewenvironment|DeclarePairedDelimiter\\w*|newtagform|renewtagform|usetagform' +
    '|mathtoolsset|DeclareMathOperator)(?![A-Za-z])',
);

// "#F0B232" -> "240,178,50" for \\color[RGB]{...} (a literal # would read as a macro parameter).
function rgb(color) {
  const n = parseInt(color.replace(/^#/, ''), 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255].join(',');
}

// Spellings models use that MathJax lacks, and an accent-coloured frame for every \boxed.
const MACROS = {
  bold: ['\\mathbf{#1}', 1],
  emph: ['\\textit{#1}', 1],
  boxed: [`{\\color[RGB]{${rgb(config.accent)}}{\\fbox{$\\displaystyle{\\color[RGB]{${rgb(config.fg)}}{#1}}$}}}`, 1],
  // A numbered tag makes MathJax lay the formula out at 100% width; show it inline instead.
  tag: ['\\qquad\\text{(#1)}', 1],
};

const adaptor = liteAdaptor();
RegisterHTMLHandler(adaptor);
const texDoc = mathjax.document('', {
  InputJax: new TeX({
    packages: PACKAGES,
    macros: MACROS,
    tags: 'none',
    formatError: (_jax, err) => {
      throw err;
    },
  }),
  OutputJax: new SVG({fontCache: 'none'}),
});
const mmlDoc = mathjax.document('', {
  InputJax: new MathML(),
  OutputJax: new SVG({fontCache: 'none', mtextInheritFont: false}),
});

const UNIT = 1000; // MathJax SVG coordinates are 1/1000 em
const pxPerUnit = (config.emPx * config.scale) / UNIT;

// A rendered piece: its SVG markup and metrics in 1/1000 em (ascent above, depth below baseline).
// Table rules get their width from MathJax's CSS, which resvg never sees: spell it out.
function inlineTableRuleStyles(markup) {
  return markup
    .replace(/<line data-line=/g, '<line stroke-width="70" data-line=')
    .replace(/class="mjx-dashed"/g, 'stroke-dasharray="140"')
    .replace(/class="mjx-dotted"/g, 'stroke-linecap="round" stroke-dasharray="0,140"');
}

function measure(svgNode) {
  const markup = inlineTableRuleStyles(adaptor.outerHTML(svgNode));
  const vb = adaptor.getAttribute(svgNode, 'viewBox').split(/\s+/).map(Number);
  const [minX, minY, width, height] = vb;
  if (![minX, minY, width, height].every(Number.isFinite)) throw new Error('bad viewBox');
  return {markup, minX, minY, width, ascent: -minY, depth: height + minY};
}

function texPiece(tex, display) {
  if (tex.length > config.maxTexChars) throw new Error('formula too long');
  if (STATEFUL.test(tex)) throw new Error('definitions are not allowed');
  const node = texDoc.convert(tex, {display, em: config.emPx, ex: config.emPx / 2});
  return measure(adaptor.firstChild(node));
}

function escapeXml(text) {
  return text.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const wordCache = new Map();
function wordPiece(word, bold) {
  const key = `${bold ? 'b' : 'n'}:${word}`;
  let piece = wordCache.get(key);
  if (piece === undefined) {
    const variant = bold ? ' mathvariant="bold"' : '';
    const node = mmlDoc.convert(`<math><mtext${variant}>${escapeXml(word)}</mtext></math>`, {
      display: false,
      em: config.emPx,
      ex: config.emPx / 2,
    });
    piece = measure(adaptor.firstChild(node));
    if (wordCache.size >= 20000) wordCache.clear();
    wordCache.set(key, piece);
  }
  return piece;
}

// Place pieces: [{piece, x, baseline}] inside a box of width x (ascent+depth) in units; draw the
// plate and return the PNG.
function paint(placed, width, height, emphasis) {
  const pad = (emphasis ? 2 : 1) * config.padEm * UNIT;
  const totalW = width + 2 * pad;
  const totalH = height + 2 * pad;
  const pxW = Math.ceil(totalW * pxPerUnit);
  const pxH = Math.ceil(totalH * pxPerUnit);
  if (pxW > config.maxWidthPx || pxH > config.maxHeightPx || pxW * pxH > config.maxPixels) {
    throw new Error(`image too large (${pxW}x${pxH} px)`);
  }
  const parts = placed.map(({piece, x, baseline}) => {
    // Re-seat the piece's own <svg> at (x, baseline - ascent) with its viewBox intact.
    const h = piece.ascent + piece.depth;
    const attrs = `x="${pad + x}" y="${pad + baseline - piece.ascent}" width="${piece.width}" height="${h}" overflow="visible"`;
    return piece.markup
      .replace(/^<svg[^>]*?(viewBox="[^"]*")[^>]*>/, `<svg ${attrs} $1>`);
  });
  const border = emphasis
    ? `<rect x="${UNIT * 0.04}" y="${UNIT * 0.04}" width="${totalW - UNIT * 0.08}" height="${totalH - UNIT * 0.08}" rx="${UNIT * 0.15}" fill="none" stroke="${config.accent}" stroke-width="${UNIT * 0.08}"/>`
    : '';
  const svg =
    `<svg xmlns="http://www.w3.org/2000/svg" width="${pxW}" height="${pxH}" viewBox="0 0 ${totalW} ${totalH}" color="${config.fg}">` +
    `<rect width="${totalW}" height="${totalH}" rx="${UNIT * 0.15}" fill="${config.bg}"/>` +
    border +
    parts.join('') +
    '</svg>';
  const hasText = svg.includes('<text');
  const font = hasText
    ? {
        loadSystemFonts: false,
        fontFiles: config.fontFiles,
        defaultFontFamily: 'DejaVu Sans',
        serifFamily: 'DejaVu Serif',
        sansSerifFamily: 'DejaVu Sans',
        monospaceFamily: 'DejaVu Sans Mono',
      }
    : {loadSystemFonts: false};
  const png = new Resvg(svg, {fitTo: {mode: 'original'}, font}).render().asPng();
  return {png: png.toString('base64'), width: pxW, height: pxH};
}

function renderFormula(req) {
  const piece = texPiece(String(req.tex), req.display !== false);
  if (piece.width <= 0 || piece.ascent + piece.depth <= 0) throw new Error('empty formula');
  return paint([{piece, x: 0, baseline: piece.ascent}], piece.width, piece.ascent + piece.depth,
    Boolean(req.emphasis));
}

// Break prose and inline math into lines no wider than paragraphWidthEm, breaking only where the
// source had a space, and set each line on a common baseline.
function renderParagraph(req) {
  const atoms = [];
  let pendingSpace = false;
  let chars = 0;
  for (const p of req.pieces) {
    if (typeof p.tex === 'string') {
      chars += p.tex.length;
      atoms.push({piece: texPiece(p.tex, false), space: pendingSpace});
      pendingSpace = false;
    } else {
      const text = String(p.text);
      chars += text.length;
      const tokens = text.split(/(\s+)/);
      for (const tok of tokens) {
        if (tok === '') continue;
        if (/^\s+$/.test(tok)) {
          pendingSpace = true;
          continue;
        }
        atoms.push({piece: wordPiece(tok, Boolean(p.bold)), space: pendingSpace});
        pendingSpace = false;
      }
    }
    if (chars > config.maxTexChars) throw new Error('paragraph too long');
  }
  if (atoms.length === 0) throw new Error('empty paragraph');
  const space = 0.28 * UNIT;
  const lineGap = 0.35 * UNIT;
  const maxWidth = config.paragraphWidthEm * UNIT;
  const lines = [];
  let line = null;
  for (const atom of atoms) {
    const gap = atom.space ? space : 0;
    if (line && atom.space && line.width + gap + atom.piece.width > maxWidth) line = null;
    if (!line) {
      line = {atoms: [], width: 0, ascent: 0, depth: 0};
      lines.push(line);
    }
    const x = line.atoms.length ? line.width + gap : 0;
    line.atoms.push({piece: atom.piece, x});
    line.width = x + atom.piece.width;
    line.ascent = Math.max(line.ascent, atom.piece.ascent, 0.75 * UNIT);
    line.depth = Math.max(line.depth, atom.piece.depth, 0.25 * UNIT);
  }
  const placed = [];
  let y = 0;
  let width = 0;
  lines.forEach((l, i) => {
    if (i > 0) y += lineGap;
    const baseline = y + l.ascent;
    for (const a of l.atoms) placed.push({piece: a.piece, x: a.x, baseline});
    y = baseline + l.depth;
    width = Math.max(width, l.width);
  });
  return paint(placed, width, y, false);
}

function handle(line) {
  let req;
  try {
    req = JSON.parse(line);
  } catch (e) {
    return {id: null, ok: false, error: 'bad request'};
  }
  try {
    let out;
    if (req.op === 'formula') out = renderFormula(req);
    else if (req.op === 'paragraph') out = renderParagraph(req);
    else if (req.op === 'ping') out = {};
    else throw new Error(`unknown op ${req.op}`);
    return Object.assign({id: req.id, ok: true}, out);
  } catch (e) {
    const message = e && e.message ? e.message : String(e);
    return {id: req.id, ok: false, error: message.slice(0, 300)};
  }
}

const rl = readline.createInterface({input: process.stdin, crlfDelay: Infinity});
rl.on('line', (line) => {
  if (line.trim() === '') return;
  process.stdout.write(JSON.stringify(handle(line)) + '\n');
});
rl.on('close', () => process.exit(0));
