// Task metrics of the PP-OCR accuracy benchmark: image preprocessing as PaddleOCR does it, CTC
// greedy decoding, edit distance, DB regions (connected components) and their matching.
// Plain functions on typed arrays, no ONNX Runtime, so metrics_test.js can check them alone.
'use strict';

// Reads ppocr_keys_v1.txt into rec's class table: index 0 is the CTC blank, 1..N the file's lines,
// N+1 a space (PaddleOCR's use_space_char), so 6623 lines give the model's 6625 classes.
function loadDictionary(text) {
  const lines = text.split('\n').map((l) => l.replace(/\r$/, ''));
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  return ['', ...lines, ' '];
}

// Index of the largest of values[offset .. offset+count) (the first one on ties).
function argmax(values, offset, count) {
  let best = 0;
  for (let i = 1; i < count; ++i) {
    if (values[offset + i] > values[offset + best]) best = i;
  }
  return best;
}

// CTC greedy decoding of scores [T, C] (row-major): the argmax class of every step, runs of one
// class merged, blanks (class 0) dropped; classes maps an index to its text.
function ctcGreedyDecode(scores, steps, numClasses, classes) {
  let text = '';
  let previous = -1;
  for (let t = 0; t < steps; ++t) {
    const k = argmax(scores, t * numClasses, numClasses);
    if (k !== 0 && k !== previous) text += classes[k];
    previous = k;
  }
  return text;
}

// Levenshtein distance between two strings, counted in Unicode code points.
function editDistance(a, b) {
  const x = Array.from(a);
  const y = Array.from(b);
  let row = Array.from({ length: y.length + 1 }, (_, j) => j);
  for (let i = 1; i <= x.length; ++i) {
    const next = [i];
    for (let j = 1; j <= y.length; ++j) {
      const substitute = row[j - 1] + (x[i - 1] === y[j - 1] ? 0 : 1);
      next.push(Math.min(row[j] + 1, next[j - 1] + 1, substitute));
    }
    row = next;
  }
  return row[y.length];
}

// Character accuracy 1 - sum(edit distance) / sum(label length) and the fraction of exact lines,
// over parallel arrays of predictions and labels.
function recognitionAccuracy(predictions, labels) {
  let errors = 0;
  let length = 0;
  let exact = 0;
  for (let i = 0; i < labels.length; ++i) {
    errors += editDistance(predictions[i], labels[i]);
    length += Array.from(labels[i]).length;
    if (predictions[i] === labels[i]) ++exact;
  }
  return { charAccuracy: 1 - errors / length, lineAccuracy: exact / labels.length };
}

// Bilinear resize of an interleaved HWC uint8 image, with half-pixel centres as OpenCV's
// INTER_LINEAR: source = (destination + 0.5) * in / out - 0.5, clamped to the image.
function resizeBilinear(pixels, width, height, channels, outWidth, outHeight) {
  const out = new Float32Array(outWidth * outHeight * channels);
  const sx = width / outWidth;
  const sy = height / outHeight;
  for (let y = 0; y < outHeight; ++y) {
    const fy = Math.min(Math.max((y + 0.5) * sy - 0.5, 0), height - 1);
    const y0 = Math.floor(fy);
    const y1 = Math.min(y0 + 1, height - 1);
    const wy = fy - y0;
    for (let x = 0; x < outWidth; ++x) {
      const fx = Math.min(Math.max((x + 0.5) * sx - 0.5, 0), width - 1);
      const x0 = Math.floor(fx);
      const x1 = Math.min(x0 + 1, width - 1);
      const wx = fx - x0;
      for (let c = 0; c < channels; ++c) {
        const p00 = pixels[(y0 * width + x0) * channels + c];
        const p01 = pixels[(y0 * width + x1) * channels + c];
        const p10 = pixels[(y1 * width + x0) * channels + c];
        const p11 = pixels[(y1 * width + x1) * channels + c];
        const top = p00 + (p01 - p00) * wx;
        const bottom = p10 + (p11 - p10) * wx;
        out[(y * outWidth + x) * channels + c] = top + (bottom - top) * wy;
      }
    }
  }
  return out;
}

// PaddleOCR's rec / cls input (resize_norm_img): resize to height H keeping the aspect ratio
// (width ceil(H * w / h), at most W), x / 255 -> (x - 0.5) / 0.5 per channel, zero (grey) padding on
// the right up to W. pixels are HWC in the model's channel order; returns NCHW [1, C, H, W].
function lineInput(pixels, width, height, channels, inHeight, inWidth) {
  const resizedWidth = Math.min(inWidth, Math.ceil((inHeight * width) / height));
  const resized = resizeBilinear(pixels, width, height, channels, resizedWidth, inHeight);
  const out = new Float32Array(channels * inHeight * inWidth);
  for (let c = 0; c < channels; ++c) {
    for (let y = 0; y < inHeight; ++y) {
      for (let x = 0; x < resizedWidth; ++x) {
        const v = resized[(y * resizedWidth + x) * channels + c];
        out[(c * inHeight + y) * inWidth + x] = (v / 255 - 0.5) / 0.5;
      }
    }
  }
  return out;
}

// PaddleOCR's det input: (x / 255 - mean[c]) / std[c] with ImageNet's mean and std applied to the
// channels in the model's (BGR) order, as NCHW; the page is already the model's size.
function pageInput(pixels, width, height, channels) {
  const mean = [0.485, 0.456, 0.406];
  const std = [0.229, 0.224, 0.225];
  const out = new Float32Array(channels * width * height);
  for (let c = 0; c < channels; ++c) {
    for (let i = 0; i < width * height; ++i) {
      out[c * width * height + i] = (pixels[i * channels + c] / 255 - mean[c]) / std[c];
    }
  }
  return out;
}

// DB post-processing's text regions: pixels with probability > threshold, grouped into
// 4-connected components, those of fewer than minPixels dropped. Returns {labels, regions}:
// labels[i] is the region index + 1 of pixel i (0 = none), regions[r] the pixel count of region r.
function textRegions(prob, width, height, threshold, minPixels) {
  const component = new Int32Array(width * height);  // 0 = unvisited or background
  const sizes = [];
  const stack = [];
  for (let start = 0; start < width * height; ++start) {
    if (component[start] !== 0 || !(prob[start] > threshold)) continue;
    const id = sizes.length + 1;
    let size = 0;
    component[start] = id;
    stack.push(start);
    while (stack.length > 0) {
      const p = stack.pop();
      ++size;
      const x = p % width;
      const neighbours = [x > 0 ? p - 1 : -1, x < width - 1 ? p + 1 : -1, p - width, p + width];
      for (const q of neighbours) {
        if (q < 0 || q >= width * height || component[q] !== 0 || !(prob[q] > threshold)) continue;
        component[q] = id;
        stack.push(q);
      }
    }
    sizes.push(size);
  }
  // Renumber the regions that are large enough; small ones become background.
  const newId = new Int32Array(sizes.length + 1);
  const regions = [];
  for (let r = 0; r < sizes.length; ++r) {
    if (sizes[r] >= minPixels) {
      regions.push(sizes[r]);
      newId[r + 1] = regions.length;
    }
  }
  const labels = new Int32Array(width * height);
  for (let i = 0; i < labels.length; ++i) labels[i] = newId[component[i]];
  return { labels, regions };
}

// Matches the regions of two label maps of one image: a region matches when its IoU with some
// region of the other map is >= minIou. Returns precision (matched b regions / b regions), recall
// (matched a regions / a regions), their F1, and the pixel IoU of the two masks. With a as the
// reference (FP32) and b the candidate (INT8). Two empty maps agree fully. The counts are returned
// too, so that a benchmark can sum them over pages.
function matchRegions(a, b, minIou) {
  const overlap = new Map();  // key ra * (nb + 1) + rb -> shared pixels
  const nb = b.regions.length;
  let both = 0;
  let either = 0;
  for (let i = 0; i < a.labels.length; ++i) {
    const ra = a.labels[i];
    const rb = b.labels[i];
    if (ra !== 0 && rb !== 0) {
      ++both;
      const key = ra * (nb + 1) + rb;
      overlap.set(key, (overlap.get(key) || 0) + 1);
    }
    if (ra !== 0 || rb !== 0) ++either;
  }
  const matchedA = new Set();
  const matchedB = new Set();
  for (const [key, shared] of overlap) {
    const ra = Math.floor(key / (nb + 1));
    const rb = key % (nb + 1);
    const union = a.regions[ra - 1] + b.regions[rb - 1] - shared;
    if (shared / union >= minIou) {
      matchedA.add(ra);
      matchedB.add(rb);
    }
  }
  const precision = nb === 0 ? (a.regions.length === 0 ? 1 : 0) : matchedB.size / nb;
  const recall = a.regions.length === 0 ? (nb === 0 ? 1 : 0) : matchedA.size / a.regions.length;
  const f1 = precision + recall === 0 ? 0 : (2 * precision * recall) / (precision + recall);
  return { precision, recall, f1, maskIou: either === 0 ? 1 : both / either,
           matchedA: matchedA.size, matchedB: matchedB.size, regionsA: a.regions.length,
           regionsB: nb, pixelsBoth: both, pixelsEither: either };
}

module.exports = {
  loadDictionary, argmax, ctcGreedyDecode, editDistance, recognitionAccuracy, resizeBilinear,
  lineInput, pageInput, textRegions, matchRegions,
};
