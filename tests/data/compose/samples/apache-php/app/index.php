<?php
echo "Hello World!";
