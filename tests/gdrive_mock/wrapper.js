// Serves npm google-drive-mock (a third-party Drive v3 mock) for cloudmount's smoke tests,
// with two fixes in front of it: media bodies are taken as raw bytes (the mock parses them as
// text, which drops or corrupts binary data and limits them to 100 KB), and `alt=media` GETs
// honour Range (the mock always sends the whole file).
// Usage: NODE_PATH=<prefix>/node_modules GDRIVE_PORT=3000 node wrapper.js
const express = require('express');
const { createApp } = require('google-drive-mock');

const app = express();
app.use(express.raw({
  limit: '1gb',
  type: (req) => {
    const t = req.headers['content-type'] || '';
    return !t.startsWith('application/json') && !t.startsWith('multipart/');
  },
}));
app.use((req, res, next) => {
  const range = req.headers.range;
  if (req.method !== 'GET' || req.query.alt !== 'media' || !range) return next();
  const send = res.send.bind(res);
  res.send = (body) => {
    const all = Buffer.isBuffer(body) ? body : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
    const m = /^bytes=(\d*)-(\d*)$/.exec(range);
    if (!m || res.statusCode !== 200) return send(body);
    let start; let end;
    if (m[1] === '') { start = Math.max(0, all.length - Number(m[2])); end = all.length - 1; }
    else { start = Number(m[1]); end = m[2] === '' ? all.length - 1 : Math.min(Number(m[2]), all.length - 1); }
    if (start >= all.length) {
      res.status(416).set('Content-Range', `bytes */${all.length}`);
      return send('');
    }
    res.status(206).set('Content-Range', `bytes ${start}-${end}/${all.length}`);
    return send(all.subarray(start, end + 1));
  };
  next();
});
app.use(createApp());
const port = Number(process.env.GDRIVE_PORT || 3000);
app.listen(port, '127.0.0.1', () => console.log(`google-drive-mock on http://127.0.0.1:${port}`));
