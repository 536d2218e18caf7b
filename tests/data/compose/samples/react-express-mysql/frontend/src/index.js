require('http').createServer((q, s) => s.end('frontend')).listen(3000);
