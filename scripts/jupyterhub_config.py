# JupyterHub configuration for a cnnlab class on one machine; scripts/hub writes the
# environment it reads and starts `jupyterhub -f scripts/jupyterhub_config.py`.
#
#   CNN_HUB_DIR      the hub's folder: database, cookie secret, log, kernelspec, homes
#   CNN_HUB_PORT     the port of the public proxy on 127.0.0.1 (default 8000)
#   CNN_HUB_USERS    how many students: student1 ... studentN (default 20)
#   CNN_HUB_PASSWORD the password every student logs in with (DummyAuthenticator)
#   CNN_HUB_TOKEN    an API token for the `classroom` service (admin of users and servers)
#   CNN_KERNEL_MEMORY, XDG_CACHE_HOME  passed on to every student's server and kernel
#
# Students are hub users only, not system accounts: SimpleLocalProcessSpawner runs each
# single-user server as this user with HOME in CNN_HUB_DIR/home/NAME. That is right for a
# lecturer's own machine and for load tests; a real course uses Zero to JupyterHub
# (docs/CLASSROOM.md), where each student's server is a container of its own.
import os
import shutil

hub_dir = os.environ["CNN_HUB_DIR"]
port = int(os.environ.get("CNN_HUB_PORT", "8000"))
students = int(os.environ.get("CNN_HUB_USERS", "20"))
notebooks = os.path.join(hub_dir, "notebooks")

c = get_config()  # noqa: F821 (JupyterHub defines it)

c.JupyterHub.bind_url = f"http://127.0.0.1:{port}"
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = port + 1
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{port + 2}"
c.JupyterHub.db_url = "sqlite:///" + os.path.join(hub_dir, "jupyterhub.sqlite")
c.JupyterHub.cookie_secret_file = os.path.join(hub_dir, "cookie_secret")
c.ConfigurableHTTPProxy.pid_file = os.path.join(hub_dir, "proxy.pid")
c.JupyterHub.cleanup_servers = True
c.JupyterHub.cleanup_proxy = True

c.JupyterHub.authenticator_class = "dummy"
c.DummyAuthenticator.password = os.environ["CNN_HUB_PASSWORD"]
c.Authenticator.allowed_users = {f"student{i}" for i in range(1, students + 1)}
c.Authenticator.admin_users = set()

c.JupyterHub.services = [{"name": "classroom", "api_token": os.environ["CNN_HUB_TOKEN"]}]
c.JupyterHub.load_roles = [{
    "name": "classroom",
    "scopes": ["admin:users", "admin:servers", "access:servers", "tokens"],
    "services": ["classroom"],
}]

c.JupyterHub.spawner_class = "simple"
c.SimpleLocalProcessSpawner.home_dir_template = os.path.join(hub_dir, "home", "{username}")
c.Spawner.default_url = "/tree"
# Servers run as the user who started the hub; the notebook server refuses root unless told.
if os.getuid() == 0:
    c.Spawner.args = ["--allow-root"]
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 120
# The cnnlab kernelspec that scripts/hub installed, the zoo's cache and the memory cap.
c.Spawner.environment = {
    "JUPYTER_PATH": os.path.join(hub_dir, "jupyter", "share", "jupyter"),
    "XDG_CACHE_HOME": os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")),
    "CNN_PICTURES": "none",
}
if os.environ.get("CNN_KERNEL_MEMORY"):
    c.Spawner.environment["CNN_KERNEL_MEMORY"] = os.environ["CNN_KERNEL_MEMORY"]


def copy_lecture_notebooks(spawner):
    """Before a student's first server starts: the lecture notebooks into their home
    (never over a copy the student already has and may have changed)."""
    home = spawner.home_dir
    os.makedirs(home, exist_ok=True)
    for name in sorted(os.listdir(notebooks)):
        target = os.path.join(home, name)
        if not os.path.exists(target):
            shutil.copyfile(os.path.join(notebooks, name), target)


c.Spawner.pre_spawn_hook = copy_lecture_notebooks
