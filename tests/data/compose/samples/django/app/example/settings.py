SECRET_KEY = 'sample'
DEBUG = True
ALLOWED_HOSTS = ['*']
ROOT_URLCONF = 'example.urls'
INSTALLED_APPS = []
DATABASES = {}
