# contrib/ansible: the fleet playbook and role (distributed, not installed).
EXTRA_DIST += \
	contrib/ansible/README.md \
	contrib/ansible/fleet-summary.rng \
	contrib/ansible/migrate-qed.yml \
	contrib/ansible/roles/virt_qed_migrate/defaults/main.yml \
	contrib/ansible/roles/virt_qed_migrate/files/vqm-combine-reports.py \
	contrib/ansible/roles/virt_qed_migrate/tasks/args.yml \
	contrib/ansible/roles/virt_qed_migrate/tasks/inventory.yml \
	contrib/ansible/roles/virt_qed_migrate/tasks/main.yml \
	contrib/ansible/roles/virt_qed_migrate/tasks/migrate.yml \
	contrib/ansible/roles/virt_qed_migrate/tasks/summary.yml \
	$(NULL)
