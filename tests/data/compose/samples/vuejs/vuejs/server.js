require('http').createServer((q, s) => s.end('vue dev server')).listen(8080);
