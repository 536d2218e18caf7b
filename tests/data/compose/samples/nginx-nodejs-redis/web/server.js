const express = require('express');
const redis = require('redis');
const os = require('os');
const app = express();
const client = redis.createClient({host: 'redis', port: 6379});
app.get('/', (req, res) => {
  client.incr('numVisits', (err, n) => {
    res.send(`${os.hostname()}: Number of visits is: ${n}`);
  });
});
app.listen(5000, () => console.log('Web app is listening on port 5000'));
