import mysql.connector
from flask import Flask
server = Flask(__name__)

@server.route('/')
def listBlog():
    pw = open('/run/secrets/db-password').read()
    conn = mysql.connector.connect(user='root', password=pw, host='db', database='example')
    cur = conn.cursor()
    cur.execute('SELECT 42')
    return f'<div>Blog post #{cur.fetchone()[0]}</div>'
