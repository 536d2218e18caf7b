require('http').createServer((q, s) => s.end('backend')).listen(process.env.PORT || 80);
