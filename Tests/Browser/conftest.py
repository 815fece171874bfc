"""Fixtures of the browser tests: a real 5-node cluster (`chorus-node local-cluster`), a real
`chorus-web` gateway over TLS in front of it, and headless Chromium windows driven by
Selenium. Every process started here is in one process group that is killed at the end."""

import json
import os
import re
import signal
import ssl
import subprocess
import tempfile
import time
import urllib.request
import uuid

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ.get("CHORUS_BIN", os.path.join(ROOT, ".build", "debug"))
SHOTS = os.environ.get("CHORUS_SCREENSHOTS", os.path.join(ROOT, ".build", "screenshots"))
HOST = "127.0.0.1"
BASE_PORT = int(os.environ.get("CHORUS_BROWSER_BASE_PORT", "27601"))


def wait_for_line(process, pattern, seconds, seen):
    """Reads the process's output until a line matches; returns the match."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        line = process.stdout.readline()
        if not line:
            if process.poll() is not None:
                break
            continue
        seen.append(line.rstrip())
        match = re.search(pattern, line)
        if match:
            return match
    raise RuntimeError(f"no line matching {pattern!r} within {seconds} s:\n" + "\n".join(seen))


class Cluster:
    """The nodes (by id: pid) and the gateway's URL."""

    def __init__(self):
        self.root = tempfile.mkdtemp(prefix="chorus-browser-")
        self.launcher = None
        self.gateway = None
        self.pids = {}
        self.url = None
        self.output = []

    def start(self):
        self.launcher = subprocess.Popen(
            # Passwords hashed with 1,000 rounds, as the node tests' clusters do: the same code,
            # and a debug build compiles BoringSSL at -O0, where the default 210,000 rounds took
            # 366 ms of a node's CPU for each account created and each login.
            [os.path.join(BIN, "chorus-node"), "local-cluster", "--nodes", "5", "--host", HOST,
             "--base-port", str(BASE_PORT), "--data-dir", os.path.join(self.root, "data"),
             "--", "--password-iterations", "1000"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, process_group=0)
        for _ in range(5):
            match = wait_for_line(self.launcher, r"node (\d+): \S+\s+\(pid (\d+)", 60, self.output)
            self.pids[int(match.group(1))] = int(match.group(2))
        wait_for_line(self.launcher, r"^leader: ", 60, self.output)
        certs = os.path.join(self.root, "data", "certs")
        endpoints = ",".join(f"{HOST}:{BASE_PORT + i}" for i in range(5))
        self.gateway = subprocess.Popen(
            [os.path.join(BIN, "chorus-web"), "--listen", f"{HOST}:0", "--endpoints", endpoints,
             "--ca", os.path.join(certs, "ca.pem"), "--cert", os.path.join(certs, "web-local.pem"),
             "--key", os.path.join(certs, "web-local-key.pem"),
             "--peer-endpoints", ",".join(f"{HOST}:{BASE_PORT + 100 + i}" for i in range(5)),
             # Every browser here comes from one address; the tests make accounts by the dozen.
             "--accounts-per-minute", "10000"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            process_group=self.launcher.pid)
        self.url = wait_for_line(self.gateway, r"open (https://\S+/)", 60, self.output).group(1)
        # Keep reading both, so neither blocks on a full pipe.
        for process in (self.launcher, self.gateway):
            subprocess.Popen(["cat"], stdin=process.stdout, stdout=subprocess.DEVNULL, process_group=self.launcher.pid)

    def stop(self):
        if self.launcher is None:
            return
        group = self.launcher.pid
        for process in (self.gateway, self.launcher):
            if process and process.poll() is None:
                process.send_signal(signal.SIGTERM)
        try:
            self.launcher.wait(timeout=15)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(group, signal.SIGKILL)
        except ProcessLookupError:
            pass
        subprocess.run(["rm", "-rf", self.root], check=False)

    def kill(self, node):
        os.kill(self.pids[node], signal.SIGKILL)

    # The gateway's API, for setting the scene without a browser.
    def call(self, method, path, body=None, cookie=None):
        context = ssl.create_default_context(cafile=os.path.join(self.root, "data", "certs", "ca.pem"))
        headers = {"Content-Type": "application/json"}
        if cookie:
            headers["Cookie"] = cookie
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url.rstrip("/") + path, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, context=context, timeout=20) as response:
                text = response.read().decode()
                cookie_header = response.headers.get("Set-Cookie")
                return response.status, (json.loads(text) if text else None), cookie_header
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read().decode() or "null"), None

    def register(self, name, password="password-1"):
        status, _, cookie = self.call("POST", "/api/accounts", {"name": name, "password": password})
        assert status == 201, f"registering {name}: {status}"
        return cookie.split(";")[0]

    def leader(self, cookie):
        status, cluster, _ = self.call("GET", "/api/cluster", cookie=cookie)
        assert status == 200
        leaders = [n for n in cluster["nodes"] if n.get("role") == "leader"]
        return max(leaders, key=lambda n: n["term"])["id"] if leaders else None


@pytest.fixture(scope="session")
def cluster():
    running = Cluster()
    try:
        running.start()
        yield running
    finally:
        running.stop()


def unique(prefix):
    return f"{prefix}{uuid.uuid4().hex[:6]}"


class Page:
    """One browser window on the gateway."""

    def __init__(self, url, name):
        options = webdriver.ChromeOptions()
        options.binary_location = os.environ.get("CHORUS_CHROMIUM", "/usr/bin/chromium")
        for argument in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--ignore-certificate-errors",
                         "--window-size=1280,800", "--disable-gpu", "--lang=en-US"]:
            options.add_argument(argument)
        self.driver = webdriver.Chrome(options=options, service=Service(os.environ.get("CHORUS_CHROMEDRIVER", "/usr/bin/chromedriver")))
        self.driver.set_window_size(1280, 800)
        self.name = name
        self.url = url
        self.driver.get(url)

    def quit(self):
        self.driver.quit()

    def by(self, element_id):
        return self.driver.find_element(By.ID, element_id)

    def css(self, selector):
        return self.driver.find_elements(By.CSS_SELECTOR, selector)

    def wait(self, condition, what, seconds=20):
        try:
            # The page re-renders lists as events arrive: an element read mid-render is no answer yet.
            return WebDriverWait(self.driver, seconds, poll_frequency=0.05,
                                 ignored_exceptions=(StaleElementReferenceException, IndexError)).until(lambda _: condition())
        except TimeoutException:
            self.shot(f"failed-{self.name}")
            raise AssertionError(f"{self.name}: timed out waiting for {what}")

    def visible(self, element_id):
        return self.by(element_id).is_displayed()

    def text(self, element_id):
        return self.by(element_id).text

    def type(self, element_id, text, clear=True):
        field = self.by(element_id)
        if clear:
            field.clear()
        field.send_keys(text)

    def click(self, element_id):
        self.by(element_id).click()

    def shot(self, name):
        os.makedirs(SHOTS, exist_ok=True)
        self.driver.save_screenshot(os.path.join(SHOTS, f"{name}.png"))

    # The app's own steps.
    def register(self, name, password="password-1"):
        self.wait(lambda: self.visible("auth"), "the login screen")
        self.click("tab-register")
        self.type("register-name", name)
        self.wait(lambda: self.text("name-status") == f"✓ {name} is available", "the name to be reported available")
        self.type("register-password", password)
        self.click("register-submit")
        self.wait(lambda: self.visible("chat") and self.text("me") == name, "the chat screen")
        self.wait_live()

    def login(self, name, password="password-1"):
        self.wait(lambda: self.visible("auth"), "the login screen")
        self.click("tab-login")
        self.type("login-name", name)
        self.type("login-password", password)
        self.click("login-submit")
        self.wait(lambda: self.visible("chat") and self.text("me") == name, "the chat screen")
        self.wait_live()

    def wait_live(self):
        self.wait(lambda: self.text("live-state") == "live", "the live channel")

    def search(self, pattern):
        self.type("search", pattern)
        self.wait(lambda: self.account_names() is not None, "the account list")

    def account_names(self):
        return [item.get_attribute("data-name") for item in self.css("#accounts li.account")]

    def open(self, name):
        self.search(name)

        def click_it():
            # Found and clicked in one step, tried again while the list re-renders (each search
            # answer and presence change replaces its items, which turns a found one stale).
            items = self.css(f'#accounts li.account[data-name="{name}"]')
            if not items:
                return False
            items[0].click()
            return True

        self.wait(click_it, f"{name} in the list, clicked")
        self.wait(lambda: self.visible("conversation") and self.text("peer-name") == name, f"the conversation with {name}")

    def open_group(self, name):
        def click_it():
            items = self.css(f'#groups li.account[data-name="#{name}"]')
            if not items:
                return False
            items[0].click()
            return True

        self.wait(click_it, f"#{name} in the groups list, clicked")
        self.wait(lambda: self.visible("conversation") and self.text("peer-name") == f"#{name}", f"the conversation of #{name}")

    def group_names(self):
        return [item.get_attribute("data-name") for item in self.css("#groups li.account")]

    def system_lines(self):
        return [item.text.split(" · ")[0] for item in self.css("#messages li.system .line")]

    def bodies(self):
        return [item.text for item in self.css("#messages li.msg:not(.pending) .body")]

    def compose(self, text):
        """Types into the composer as a person does: Shift+Enter between lines (Enter sends)."""
        box = self.by("composer")
        box.clear()
        for number, line in enumerate(text.split("\n")):
            if number:
                box.send_keys(Keys.SHIFT, Keys.ENTER)
            box.send_keys(line)

    def send(self, text):
        self.compose(text)
        self.click("send")
        self.wait(lambda: not self.css("#messages li.pending") and text in self.bodies(), f"'{text}' to be sent")
